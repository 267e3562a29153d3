"""``make scan``'s skip file: each skip has its reason, skips only what it names, and goes stale loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.scan import (
    DOCS,
    SKIPS_FILE,
    Finding,
    SkipFileError,
    dockerfiles,
    judge,
    load_skips,
    markdown_anchors,
    terraform_for_checkov,
    with_every_switch_on,
)

DLQ_SKIP = """
[[skip]]
tool = "checkov"
check = "CKV_AWS_116"
resources = ["*.APIHandler"]
kind = "b"
reason = "invoked synchronously"
"""


def finding(check: str = "CKV_AWS_116", resource: str = "AWS::Lambda::Function.APIHandler") -> Finding:
    return Finding("checkov", "sam-transformed", check, resource, "a check")


def test_a_skip_covers_the_check_on_the_resources_it_names_only() -> None:
    # GIVEN a skip of one check on one function
    skips = load_skips(DLQ_SKIP)

    # WHEN the scan finds that check on that function and on another, and another check
    found = [finding(), finding(resource="AWS::Lambda::Function.Other"), finding(check="CKV_AWS_117")]
    verdict = judge(found, skips, {("checkov", "sam-transformed")})

    # THEN only the named one is skipped; the others fail the run
    assert [f for f, _skip in verdict.skipped] == [found[0]]
    assert verdict.unexpected == found[1:]
    assert verdict.stale == [] and not verdict.ok


def test_a_skip_that_matches_nothing_any_more_is_stale_and_fails_the_run() -> None:
    skips = load_skips(DLQ_SKIP)

    verdict = judge([], skips, {("checkov", "sam-transformed")})

    assert verdict.stale == skips and not verdict.ok
    # A tool or target that did not run (no Dockerfile yet, say) leaves its skips alone
    assert judge([], skips, {("hadolint", "Dockerfile")}).ok


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('reason = "invoked synchronously"', "missing reason"),
        ('kind = "b"', "kind must be b"),
        ('tool = "checkov"', "tool must be one of"),
        ('check = "CKV_AWS_116"', "missing check"),
    ],
)
def test_every_skip_says_which_check_of_which_tool_why_and_of_what_kind(change: str, message: str) -> None:
    blanked = {
        'reason = "invoked synchronously"': 'reason = " "',
        'kind = "b"': 'kind = "a"',
        'tool = "checkov"': 'tool = "tfsec"',
        'check = "CKV_AWS_116"': 'check = ""',
    }[change]
    with pytest.raises(SkipFileError, match=message):
        load_skips(DLQ_SKIP.replace(change, blanked))


def test_a_documented_choice_names_an_existing_section_of_the_deployment_guide() -> None:
    choice = DLQ_SKIP.replace('kind = "b"', 'kind = "c"')
    anchors = {"scheduled-functions-without-a-dead-letter-queue"}

    with pytest.raises(SkipFileError, match="names its section"):
        load_skips(choice, anchors)
    with pytest.raises(SkipFileError, match="has no section #gone"):
        load_skips(choice + 'docs = "docs/deployment.md#gone"\n', anchors)
    (skip,) = load_skips(
        choice + 'docs = "docs/deployment.md#scheduled-functions-without-a-dead-letter-queue"\n', anchors
    )
    assert skip.kind == "c"


def test_the_projects_skip_file_is_valid_against_the_deployment_guide() -> None:
    skips = load_skips(SKIPS_FILE.read_text(), markdown_anchors(DOCS.read_text()))

    assert skips and all(skip.reason for skip in skips)
    assert {skip.kind for skip in skips} <= {"b", "c"}


def test_checkov_gets_the_terraform_configuration_without_its_terraform_block() -> None:
    config = {"terraform": {"required_version": ">= 1.5.0"}, "resource": {"aws_sns_topic": {}}}

    assert terraform_for_checkov(config) == {"resource": {"aws_sns_topic": {}}}


def test_dockerfiles_are_found_by_name_outside_virtualenvs_and_build_outputs(tmp_path: Path) -> None:
    root = tmp_path
    for name in (
        "Dockerfile",
        "worker/Dockerfile.worker",
        "x.Dockerfile",
        ".venv-scan/Dockerfile",
        "build/Dockerfile",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("FROM scratch\n")

    assert [p.relative_to(root).as_posix() for p in dockerfiles(root)] == [
        "Dockerfile",
        "x.Dockerfile",
        "worker/Dockerfile.worker",
    ]


def test_checkov_sees_the_optional_parts_of_the_sam_template_switched_on() -> None:
    # checkov evaluates conditions with the parameters' defaults: a part switched off by default is unseen
    template = {
        "Parameters": {"CreateDataTier": {"Type": "String", "Default": "false"}, "Other": {"Default": "x"}}
    }

    switched = with_every_switch_on(template)

    assert switched["Parameters"] == {
        "CreateDataTier": {"Type": "String", "Default": "true"},
        "Other": {"Default": "x"},
    }
    assert template["Parameters"]["CreateDataTier"]["Default"] == "false"  # the rendered one is left alone
