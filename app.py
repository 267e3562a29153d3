"""Wiring only: routes, the authorizer and the error mapping. Rules live in chalicelib."""

import sys

from chalice import Chalice

from chalicelib.auth import authorize_bearer_token
from chalicelib.config import get_settings
from chalicelib.gateway_responses import emulate_in_local_gateway
from chalicelib.http import register_route
from functions.create_patient import create_patient
from functions.delete_patient import delete_patient
from functions.get_notification import get_notification
from functions.get_patient import get_patient
from functions.list_notifications import list_notifications
from functions.list_patient_notifications import list_patient_notifications
from functions.list_patients import list_patients
from functions.update_patient import update_patient

get_settings()  # an unsafe production configuration fails here, before any request

app = Chalice(app_name="telehealth-api")
app.debug = False

if "chalice.local" in sys.modules:  # chalice local or chalice.test.Client, never Lambda
    emulate_in_local_gateway()

bearer_token = app.authorizer(name="bearer_token")(authorize_bearer_token)

for path, method, handler in (
    ("/patients", "POST", create_patient),
    ("/patients", "GET", list_patients),
    ("/patients/{patient_id}", "GET", get_patient),
    ("/patients/{patient_id}", "PUT", update_patient),
    ("/patients/{patient_id}", "DELETE", delete_patient),
    ("/patients/{patient_id}/notifications", "GET", list_patient_notifications),
    ("/notifications", "GET", list_notifications),
    ("/notifications/{notification_id}", "GET", get_notification),
):
    register_route(app, path, method, handler, authorizer=bearer_token)
