"""The transaction boundaries on SQLite and PostgreSQL: what a UnitOfWork commits or rolls back."""

from __future__ import annotations

from chalicelib.audit.recording import CREATE_PATIENT, SYSTEM_PRINCIPAL, AuditContext, audit_row
from chalicelib.service_layer.unit_of_work import ReadTransaction, UnitOfWork
from chalicelib.storage.models import Patient, utc_now


def patient(email: str) -> Patient:
    now = utc_now()
    return Patient(name="Ann", email=email, email_key=email, version=1, created_at=now, updated_at=now)


def outcome(action: str) -> dict[str, object]:
    return audit_row(principal="suite", action=action, patient_id=None, status=200, request_id=None)


def stored() -> tuple[int, list[tuple[str, str]]]:
    """The patient count and the audit trail's (principal, action) pairs, oldest first."""
    with ReadTransaction() as reads:
        events = reads.audit_events.newest_first(limit=10)
        return reads.patients.count(), [(e.principal, e.action) for e in reversed(events)]


def test_audit_rows_and_orm_changes_are_one_transaction_and_a_unit_of_work_can_be_entered_again(
    configured_app: str,
) -> None:
    # GIVEN one unit of work, for two transactions in turn
    uow = UnitOfWork()

    # WHEN the first appends an audit row on its connection, adds a patient through its
    # session, and is left without commit
    with uow:
        uow.audit_events.add(outcome("first"))
        uow.patients.add(patient("first@example.com"))

    # THEN neither was stored
    assert stored() == (0, [])

    # WHEN the second does the same and commits
    with uow:
        uow.audit_events.add(outcome("second"))
        uow.patients.add(patient("second@example.com"))
        uow.commit()

    # THEN both are stored, with the audit row of the change
    assert stored() == (1, [("suite", "second"), (SYSTEM_PRINCIPAL, CREATE_PATIENT.name)])


def test_an_after_commit_callback_can_write_in_a_unit_of_work_of_its_own(configured_app: str) -> None:
    # GIVEN a callback that writes (the notification hand-off marks a row pending this way)
    def write_after() -> None:
        with UnitOfWork() as later:
            later.audit_events.add(outcome("after commit"))
            later.commit()

    # WHEN a unit of work registers it and commits
    with UnitOfWork() as uow:
        uow.audit_events.add(outcome("change"))
        uow.after_commit(write_after)
        assert stored() == (0, [])  # nothing runs before the commit
        uow.commit()

    # THEN the callback ran once the first transaction had ended (SQLite would otherwise wait for its lock)
    assert stored() == (0, [("suite", "change"), ("suite", "after commit")])


def test_a_change_under_an_audit_context_is_recorded_under_it_and_marks_it_recorded(
    configured_app: str,
) -> None:
    # GIVEN a request's audit context, handed to the unit of work
    context = AuditContext(principal="clinic", action=CREATE_PATIENT, request_id="r1")

    # WHEN a unit of work that only reads commits under it, and then one that adds a patient
    with UnitOfWork(audit=context) as reads_only:
        reads_only.patients.contact(1)
        reads_only.commit()
    read_only_recorded = context.recorded
    with UnitOfWork(audit=context) as uow:
        uow.patients.add(patient("ann@example.com"))
        uow.commit()

    # THEN only the change wrote a row, under the request's principal, and marked the context recorded
    assert not read_only_recorded and context.recorded
    assert stored() == (1, [("clinic", CREATE_PATIENT.name)])


def test_steps_registered_last_run_after_the_others_and_a_rollback_forgets_them(configured_app: str) -> None:
    ran: list[str] = []

    # GIVEN steps registered before commit, the last-registered one as "last" first
    with UnitOfWork() as uow:
        uow.before_commit(lambda: ran.append("counter"), last=True)
        uow.before_commit(lambda: ran.append("audit"))
        uow.after_commit(lambda: ran.append("after"))
        uow.commit()
    # WHEN another transaction of the same unit of work registers one and rolls back
    with uow:
        uow.before_commit(lambda: ran.append("rolled back"))
    with uow:
        uow.commit()

    # THEN the last step ran just before the commit, after-commit callbacks after it, nothing else
    assert ran == ["audit", "counter", "after"]
