"""Wiring only: the endpoints served, the scheduled functions, the authorizer and the middleware.
Rules live in chalicelib.

Each handler declares its own path, method, scope, audit action and documentation (``@endpoint``
in ``functions/<handler>.py``); this file lists what is served.
"""

import gc

# Python's cyclic collector would otherwise run a full collection partway through these imports,
# scanning every object they build (~30 ms, a tenth of a cold start), none of them garbage. Paused
# until the last route is registered (the end of this file), then those objects are frozen out of it.
gc.disable()

from chalice import Chalice

from chalicelib.config.logs import get_log_settings
from chalicelib.http import authorizer as auth
from chalicelib.http.middleware import bind_current_request, log_request, method_not_allowed_in_our_shape
from chalicelib.http.routes import register_endpoint
from chalicelib.http.schedules import register_schedule
from chalicelib.http.startup import check_settings_at_startup, started_as_chalice_local
from chalicelib.observability.structured_logging import configure_logging
from functions.create_patient import create_patient
from functions.delete_patient import delete_patient
from functions.fhir_create_patient import fhir_create_patient
from functions.fhir_delete_patient import fhir_delete_patient
from functions.fhir_get_metadata import fhir_get_metadata
from functions.fhir_read_patient import fhir_read_patient
from functions.fhir_search_patients import fhir_search_patients
from functions.fhir_search_patients_form import fhir_search_patients_form
from functions.fhir_update_patient import fhir_update_patient
from functions.fhir_vread_patient import fhir_vread_patient
from functions.get_docs_asset import get_docs_asset
from functions.get_docs_page import get_docs_page
from functions.get_health import get_health
from functions.get_notification import get_notification
from functions.get_notification_counts import get_notification_counts
from functions.get_openapi_document import get_openapi_document
from functions.get_patient import get_patient
from functions.list_audit_events import list_audit_events
from functions.list_notifications import list_notifications
from functions.list_patient_notifications import list_patient_notifications
from functions.list_patients import list_patients
from functions.purge_expired_records import purge_expired_records as purge_expired_records_handler
from functions.relay_notifications import relay_notifications as relay_notifications_handler
from functions.search_patients import search_patients
from functions.update_patient import update_patient

log_settings = get_log_settings()
configure_logging(log_settings.level, in_lambda=log_settings.in_lambda, console=log_settings.console)
check_settings_at_startup()  # an unsafe production configuration fails here, before any request

app = Chalice(app_name="telehealth-api")
app.debug = False

# In this order: the access line times everything the request costs.
app.register_middleware(log_request, "http")
app.register_middleware(method_not_allowed_in_our_shape, "http")
app.register_middleware(bind_current_request, "http")
# Lambda runs the authorizer as ``app.<its function's name>``: that attribute must be the wrapper.
authorize_bearer_token = app.authorizer(name="bearer_token", ttl_seconds=auth.AUTHORIZER_CACHE_SECONDS)(
    auth.authorize_bearer_token
)

for handler in (
    # Patient records (PHI): each call is in the audit trail.
    create_patient,
    list_patients,
    search_patients,
    get_patient,
    update_patient,
    delete_patient,
    # The same patients as FHIR R4 resources (the FHIR face: chalicelib.fhir, loaded on first use).
    fhir_create_patient,
    fhir_search_patients,
    fhir_search_patients_form,
    fhir_read_patient,
    fhir_vread_patient,
    fhir_update_patient,
    fhir_delete_patient,
    # Delivery status of the notifications a change produced: ids and states, no patient data.
    list_patient_notifications,
    list_notifications,
    get_notification,
    # The trail itself, no patient data.
    list_audit_events,
    # For operators: the outbox's counts, no patient data.
    get_notification_counts,
    # Public, no token: the API's description, its browser view and its health.
    get_openapi_document,
    fhir_get_metadata,
    get_health,
    get_docs_page,
    get_docs_asset,
):
    # Behind the authorizer when the handler's @endpoint names a scope.
    register_endpoint(app, handler, authorizer=authorize_bearer_token)

# Scheduled functions (EventBridge), each a Lambda function of its own. Lambda runs them as
# ``app.<name>``: each attribute keeps its handler's name.
relay_notifications = register_schedule(app, relay_notifications_handler)
purge_expired_records = register_schedule(app, purge_expired_records_handler)

# Plain `chalice local` only imports this file: wire its server here. Never in Lambda nor a deploy.
if started_as_chalice_local():
    import local_server  # not in the Lambda zip

    local_server.serve_with_stock_chalice_local(app)

# What the imports built lives as long as the process: no later collection needs to scan it.
gc.freeze()
gc.enable()
