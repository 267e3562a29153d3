"""The docs page in headless Chromium, served by a real ``chalice local``.

Chromium and chromedriver are Debian's (scripts/install_browser.sh, run by
``make test`` and, when they are missing, by the fixture below); Selenium
drives them by path, so nothing is downloaded at test time.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.storage.migrate import upgrade_database
from tests.helpers.processes import chalice_local

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,2000",
)
TOKEN = "browser-test-token"
WAIT_S = 30


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        if os.geteuid() != 0 and not os.environ.get("CI"):
            # A laptop user without root cannot get Debian's chromium here; CI always runs this test.
            pytest.skip("headless Chromium missing: run `sudo make browser` for the docs-page test")
        subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "install_browser.sh")], check=True)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch drivers
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("docs-browser")
    database_url = f"sqlite:///{directory / 'telehealth.db'}"
    upgrade_database(database_url)
    env = {"DATABASE_URL": database_url, "APP_STAGE": "dev", "API_TOKENS": f"browser:{TOKEN}"}
    with chalice_local(env, directory / "chalice-local.log") as base_url:
        yield base_url


def wait_for(browser: WebDriver, css: str, within: WebElement | None = None) -> WebElement:
    scope: Any = within or browser
    return WebDriverWait(browser, WAIT_S).until(lambda _: _visible(scope, css))


def _visible(scope: Any, css: str) -> WebElement | bool:
    found = [element for element in scope.find_elements(By.CSS_SELECTOR, css) if element.is_displayed()]
    return found[0] if found else False


def authorize(browser: WebDriver, token: str) -> None:
    browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    dialog = wait_for(browser, ".modal-ux")
    dialog.find_element(By.CSS_SELECTOR, "input").send_keys(token)
    dialog.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .authorize").click()
    wait_for(browser, ".auth-btn-wrapper .btn-done").click()


def try_it_out(
    browser: WebDriver, operation_id: str, *, body: str | None = None, **params: str
) -> WebElement:
    """Open an operation, fill it in, execute it; return the live response's panel."""
    block = browser.find_element(By.ID, f"operations-patients-{operation_id}")
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_for(browser, ".try-out__btn", within=block).click()
    if body is not None:
        editor = wait_for(browser, "textarea.body-param__text", within=block)
        editor.clear()
        editor.send_keys(body)
    for name, value in params.items():
        wait_for(browser, f'input[placeholder="{name}"]', within=block).send_keys(value)
    block.find_element(By.CSS_SELECTOR, ".btn.execute").click()
    return wait_for(browser, ".live-responses-table .response", within=block)


def response_of(panel: WebElement) -> tuple[int, dict[str, Any]]:
    status = panel.find_element(By.CSS_SELECTOR, ".response-col_status").text.strip()
    body = panel.find_element(By.CSS_SELECTOR, ".response-col_description pre").text
    return int(status), json.loads(body)


def test_docs_page_lists_every_route_and_tries_create_and_get(browser: WebDriver, api_url: str) -> None:
    from app import app

    # GIVEN the docs page served by chalice local
    browser.get(f"{api_url}/docs")
    WebDriverWait(browser, WAIT_S).until(
        expected_conditions.presence_of_element_located((By.ID, "swagger-ui"))
    )
    wait_for(browser, ".opblock")

    # THEN every route Chalice serves is listed
    listed = {
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.upper(),
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"),
        )
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }
    assert listed == {(method, path) for path, methods in app.routes.items() for method in methods}

    # WHEN the token is entered and "Try it out" runs create, then get
    authorize(browser, TOKEN)
    patient = {"name": "Browser Test", "email": "browser.test@example.com", "phone": "+1 212 555 0100"}
    created_status, created = response_of(try_it_out(browser, "create_patient", body=json.dumps(patient)))
    patient_id = str(created["patient"]["id"])
    fetched_status, fetched = response_of(try_it_out(browser, "get_patient", patient_id=patient_id))

    # THEN the page shows the API's answers
    assert created_status == 201
    assert created["patient"]["email"] == patient["email"]
    assert fetched_status == 200
    assert fetched == created["patient"]


def test_docs_with_a_trailing_slash_shows_the_page(browser: WebDriver, api_url: str) -> None:
    # GIVEN the address typed with a trailing slash, where relative links would miss the assets
    browser.get(f"{api_url}/docs/")

    # THEN the browser lands on /docs and the page renders with its script and stylesheet
    wait_for(browser, ".opblock")
    assert browser.current_url == f"{api_url}/docs"
