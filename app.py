"""Wiring only: routes, the authorizer and the error mapping. Rules live in chalicelib."""

import sys

from chalice import Chalice

from chalicelib.access.scopes import AUDIT_READ, PATIENTS_READ, PATIENTS_WRITE
from chalicelib.audit import recording as audit
from chalicelib.config.settings import check_settings_at_startup, get_log_settings
from chalicelib.http import authorizer as auth
from chalicelib.http.gateway_responses import emulate_in_local_gateway
from chalicelib.http.local_serving import prepare_local_server
from chalicelib.http.routes import (
    bind_current_request,
    log_request,
    method_not_allowed_in_our_shape,
    register_route,
)
from chalicelib.observability.structured_logging import configure_logging
from functions.create_patient import create_patient
from functions.delete_patient import delete_patient
from functions.get_docs_asset import get_docs_asset
from functions.get_docs_page import get_docs_page
from functions.get_health import get_health
from functions.get_notification import get_notification
from functions.get_openapi_document import get_openapi_document
from functions.get_patient import get_patient
from functions.list_audit_events import list_audit_events
from functions.list_notifications import list_notifications
from functions.list_patient_notifications import list_patient_notifications
from functions.list_patients import list_patients
from functions.update_patient import update_patient

log_settings = get_log_settings()
configure_logging(log_settings.level, in_lambda=log_settings.in_lambda, console=log_settings.console)
check_settings_at_startup()  # an unsafe production configuration fails here, before any request

app = Chalice(app_name="telehealth-api")
app.debug = False

if "chalice.local" in sys.modules:  # chalice local or chalice.test.Client, never Lambda
    emulate_in_local_gateway()
    prepare_local_server()

# In this order: the access line times everything the request costs.
app.register_middleware(log_request, "http")
app.register_middleware(method_not_allowed_in_our_shape, "http")
app.register_middleware(bind_current_request, "http")
# Lambda runs the authorizer as ``app.<its function's name>``: that attribute must be the wrapper.
authorize_bearer_token = app.authorizer(name="bearer_token")(auth.authorize_bearer_token)

# Each patient route names the one scope a token needs for it, and the action
# its calls are recorded as in the audit trail.
for path, method, handler, scope, action in (
    ("/patients", "POST", create_patient, PATIENTS_WRITE, audit.CREATE_PATIENT),
    ("/patients", "GET", list_patients, PATIENTS_READ, audit.LIST_PATIENTS),
    ("/patients/{patient_id}", "GET", get_patient, PATIENTS_READ, audit.READ_PATIENT),
    ("/patients/{patient_id}", "PUT", update_patient, PATIENTS_WRITE, audit.UPDATE_PATIENT),
    ("/patients/{patient_id}", "DELETE", delete_patient, PATIENTS_WRITE, audit.DELETE_PATIENT),
):
    register_route(app, path, method, handler, authorizer=authorize_bearer_token, scope=scope, audit=action)

# Delivery status of the notifications a change produced: ids and states, no patient data.
for path, method, handler in (
    ("/patients/{patient_id}/notifications", "GET", list_patient_notifications),
    ("/notifications", "GET", list_notifications),
    ("/notifications/{notification_id}", "GET", get_notification),
):
    register_route(app, path, method, handler, authorizer=authorize_bearer_token, scope=PATIENTS_READ)

# The trail itself holds no patient data.
register_route(app, "/audit", "GET", list_audit_events, authorizer=authorize_bearer_token, scope=AUDIT_READ)

# Public: the API's description and its browser view (no patient data).
for path, method, handler in (
    ("/openapi.json", "GET", get_openapi_document),
    ("/health", "GET", get_health),
    ("/docs", "GET", get_docs_page),
    ("/docs/assets/{asset}", "GET", get_docs_asset),
):
    register_route(app, path, method, handler, authorizer=None)
