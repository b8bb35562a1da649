"""The web UI in a real headless browser (Debian's chromium through Selenium and chromedriver) against a
real `reconciler up` syncing a real git repository: log in, submit a workflow and watch its nodes turn
green without a reload, read a node's logs, suspend and resume, see a failed sync's file and line, the
cron and semaphore pages; axe-core on every page (no serious or critical violation) and the keyboard.

Screenshots of each page go to $RECONCILER_UI_SCREENSHOTS (default: a pytest temporary folder).
axe-core's minified script is vendored in tests/ui_assets with its licence (MPL-2.0).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from .gitops_repo import cron, make_remote, template
from .test_api_controls import APPROVAL  # build, check, approve (suspend, supplies target), deploy
from .test_api_support import TOKEN, Daemon, start_daemon

pytestmark = pytest.mark.xdist_group("ui-browser")
AXE = Path(__file__).with_name("ui_assets") / "axe.min.js"
WAIT = 90  # seconds: a loaded CI machine runs the steps slowly

STEPS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: ui-steps-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: first, template: talk}
    - - {name: second, template: talk}
  - name: talk
    container: {image: alpine:3, command: [sh, -c, 'echo hello from the ui test; sleep 1']}
"""

LONG = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: long-one}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: wait, template: wait}
    - - {name: after, template: wait}
  - name: wait
    container: {image: alpine:3, command: [sh, -c, 'sleep 3']}
"""

BAD_FILE = textwrap.dedent("""\
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata:
      name: broken
    spec:
      entrypoint: main
      templates: [
    """)


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        raise AssertionError("the UI tests need Debian's chromium and chromium-driver "
                             "(apt-get install chromium chromium-driver; .ci/run installs them)")
    return browser, driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("RECONCILER_UI_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tmp = tmp_path_factory.mktemp("ui")
    remote = make_remote(tmp / "git", {"workflows/etl.yaml": template("etl"),
                                       "workflows/nightly.yaml": cron("nightly")})
    remote.commit("dev", {"workflows/broken.yaml": BAD_FILE}, "a broken template")
    d = start_daemon(tmp / "home", tmp, "--repo", str(remote.bare), "--poll-interval", "3600")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def wait(driver: webdriver.Chrome, condition, timeout: float = WAIT):
    # The live pages re-render rows as events arrive: an element found a moment ago may be replaced
    # before it is read. That is a reason to look again, not a failure.
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def login(driver: webdriver.Chrome, daemon: Daemon, hash_: str = "#/workflows") -> None:
    driver.get(f"{daemon.url}/ui/{hash_}")
    if driver.execute_script("return sessionStorage.getItem('reconciler.token')") != TOKEN:
        field = wait(driver, ec.presence_of_element_located((By.ID, "token")))
        field.clear()
        field.send_keys(TOKEN, Keys.ENTER)
    wait(driver, ec.visibility_of_element_located((By.ID, "top")))


def check_axe(driver: webdriver.Chrome, page: str) -> None:
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(JSON.stringify(r.violations)))"
        ".catch(e => done(JSON.stringify([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}])));")
    bad = [v for v in json.loads(result) if v.get("impact") in ("serious", "critical")]
    assert not bad, f"{page}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n.get('target') for n in v['nodes'][:3]]}" for v in bad)


def submit_api(daemon: Daemon, manifest: str) -> str:
    reply = daemon.client.request("POST", "/api/v1/workflows/default", {"manifest": manifest})
    assert reply.status == 201, reply.body
    return reply.json()["items"][0]["metadata"]["name"]


def node_phase(driver: webdriver.Chrome, name: str) -> str | None:
    found = driver.find_elements(By.CSS_SELECTOR, f'#node-list button[data-node="{name}"]')
    return found[0].get_attribute("data-phase") if found else None


def test_root_redirects_and_login_keeps_the_token_out_of_the_url(browser, daemon, shots) -> None:
    browser.get(daemon.url + "/ui/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(daemon.url + "/")
    assert browser.current_url.startswith(f"{daemon.url}/ui/")
    field = wait(browser, ec.presence_of_element_located((By.ID, "token")))
    browser.save_screenshot(str(shots / "login.png"))
    check_axe(browser, "login")
    field.send_keys("not-the-token", Keys.ENTER)
    wait(browser, ec.text_to_be_present_in_element((By.ID, "login-error"), "not accepted"))
    assert browser.execute_script("return sessionStorage.getItem('reconciler.token')") is None
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(TOKEN, Keys.ENTER)
    wait(browser, ec.visibility_of_element_located((By.ID, "workflows")))
    assert TOKEN not in browser.current_url
    assert browser.execute_script("return sessionStorage.getItem('reconciler.token')") == TOKEN
    assert browser.execute_script("return localStorage.length") == 0  # never kept beyond the tab


def test_submit_and_watch_nodes_turn_green_without_reload(browser, daemon, shots) -> None:
    login(browser, daemon)
    browser.find_element(By.CSS_SELECTOR, ".submit-box summary").click()
    browser.find_element(By.ID, "submit-manifest").send_keys(STEPS)
    browser.find_element(By.CSS_SELECTOR, "#submit-form button[type=submit]").click()
    wait(browser, ec.url_contains("#/workflows/default/ui-steps-"))
    browser.execute_script("window.__sameDocument = 'yes'")  # gone if the page reloads
    wait(browser, lambda d: node_phase(d, "first") is not None)
    assert node_phase(browser, "second") != "Succeeded" or node_phase(browser, "first") == "Succeeded"
    wait(browser, lambda d: node_phase(d, "second") == "Succeeded")
    assert node_phase(browser, "first") == "Succeeded"
    wait(browser, ec.text_to_be_present_in_element((By.ID, "wf-phase"), "Succeeded"))
    assert browser.execute_script("return window.__sameDocument") == "yes"
    assert int(browser.find_element(By.ID, "graph").get_attribute("data-drawn")) >= 3  # laid out and drawn
    browser.save_screenshot(str(shots / "workflow.png"))
    check_axe(browser, "workflow")

    # A node's logs, opened from the keyboard: Tab to the node, Enter, then the Logs button.
    button = browser.find_element(By.CSS_SELECTOR, '#node-list button[data-node="first"]')
    browser.execute_script("arguments[0].focus()", button)
    button.send_keys(Keys.ENTER)
    logs = wait(browser, ec.element_to_be_clickable((By.ID, "show-logs")))
    logs.send_keys(Keys.ENTER)
    wait(browser, ec.text_to_be_present_in_element((By.ID, "node-logs"), "hello from the ui test"))
    browser.save_screenshot(str(shots / "node-logs.png"))


def test_workflow_list_filters_sorts_and_updates_live(browser, daemon, shots) -> None:
    login(browser, daemon)
    wait(browser, ec.visibility_of_element_located((By.ID, "workflows")))
    name = submit_api(daemon, STEPS)
    row = f'#wf-rows tr[data-name="{name}"]'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, row))  # arrives through the stream
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, row).get_attribute("data-phase") == "Succeeded")
    Select(browser.find_element(By.ID, "f-phase")).select_by_value("Failed")
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, row))
    Select(browser.find_element(By.ID, "f-phase")).select_by_value("")
    sort = browser.find_element(By.CSS_SELECTOR, 'button.sort[data-sort="name"]')
    sort.send_keys(Keys.ENTER)  # keyboard: sortable headers are buttons
    header = browser.find_element(By.CSS_SELECTOR, 'button.sort[data-sort="name"]').find_element(By.XPATH, "..")
    assert header.get_attribute("aria-sort") == "ascending"
    names = [r.get_attribute("data-name") for r in browser.find_elements(By.CSS_SELECTOR, "#wf-rows tr")]
    assert names == sorted(names) and name in names
    browser.save_screenshot(str(shots / "workflows.png"))
    check_axe(browser, "workflows")


def test_suspend_resume_and_a_suspend_node_with_its_parameter(browser, daemon, shots) -> None:
    long_one = submit_api(daemon, LONG)
    login(browser, daemon, f"#/workflows/default/{long_one}")
    wait(browser, lambda d: node_phase(d, "wait") in ("Running", "Succeeded"))
    confirm = (By.ID, "confirm-ok")
    browser.find_element(By.XPATH, "//div[@aria-label='Workflow controls']/button[text()='Suspend']").click()
    wait(browser, ec.element_to_be_clickable(confirm)).click()
    wait(browser, lambda d: (daemon.client.get(f"/api/v1/workflows/default/{long_one}").json()["spec"]
                             .get("suspend")) is True)
    browser.find_element(By.XPATH, "//div[@aria-label='Workflow controls']/button[text()='Resume']").click()
    wait(browser, ec.element_to_be_clickable(confirm)).click()
    wait(browser, ec.text_to_be_present_in_element((By.ID, "wf-phase"), "Succeeded"))
    assert daemon.client.get(f"/api/v1/workflows/default/{long_one}").json()["spec"].get("suspend") is not True

    approval = submit_api(daemon, APPROVAL)
    browser.get(f"{daemon.url}/ui/#/workflows/default/{approval}")
    wait(browser, lambda d: node_phase(d, "approve") == "Suspended")
    browser.find_element(By.CSS_SELECTOR, '#node-list button[data-node="approve"]').click()
    field = wait(browser, ec.presence_of_element_located((By.ID, "param-target")))
    field.clear()
    field.send_keys("staging")
    browser.save_screenshot(str(shots / "suspend-node.png"))
    check_axe(browser, "suspend node")
    browser.find_element(By.ID, "resume-node").click()
    wait(browser, ec.element_to_be_clickable(confirm)).click()
    wait(browser, lambda d: node_phase(d, "deploy") == "Succeeded")
    wf = daemon.client.get(f"/api/v1/workflows/default/{approval}").json()
    deploy = next(n for n in wf["status"]["nodes"].values() if n["displayName"] == "deploy")
    assert deploy["inputs"]["parameters"][0]["value"] == "deploy to staging"


def test_failed_sync_shows_its_file_and_line(browser, daemon, shots) -> None:
    login(browser, daemon, "#/environments")
    card = '[data-env="dev"]'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"{card} .problem"))
    problems = [p.text for p in browser.find_elements(By.CSS_SELECTOR, f"{card} .problem")]
    assert any(re.search(r"workflows/broken\.yaml:\d+", p) for p in problems), problems
    assert "Failed" in browser.find_element(By.CSS_SELECTOR, f"{card} h2").text
    prod = browser.find_element(By.CSS_SELECTOR, '[data-env="prod"]').text
    assert "Synced" in prod and "initial" in prod  # the applied commit's subject
    browser.save_screenshot(str(shots / "environments.png"))
    check_axe(browser, "environments")


def test_cron_and_semaphore_pages(browser, daemon, shots) -> None:
    login(browser, daemon, "#/cron")
    item = '[data-cron="nightly"] dd li'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, item))
    times = [e.text for e in browser.find_elements(By.CSS_SELECTOR, item)]
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00Z", t) for t in times)
    browser.save_screenshot(str(shots / "cron.png"))
    check_axe(browser, "cron")
    browser.get(f"{daemon.url}/ui/#/semaphores")
    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".live"), "Updated"))
    browser.save_screenshot(str(shots / "semaphores.png"))
    check_axe(browser, "semaphores")


def test_keyboard_reaches_the_main_controls(browser, daemon) -> None:
    login(browser, daemon, "#/workflows")
    wait(browser, ec.visibility_of_element_located((By.ID, "workflows")))
    browser.execute_script("document.querySelector('.skip').focus()")  # the first stop of the page
    reached = []
    for _ in range(20):  # Tab through the page from the top, as a keyboard user does
        ActionChains(browser).send_keys(Keys.TAB).perform()
        el = browser.switch_to.active_element
        reached.append(el.get_attribute("id") or el.text or el.tag_name)
    for wanted in ("Environments", "Workflows", "Cron workflows", "Semaphores", "logout", "f-namespace", "f-phase"):
        assert wanted in reached, (wanted, reached)
    env_link = browser.find_element(By.LINK_TEXT, "Environments")
    env_link.send_keys(Keys.ENTER)
    wait(browser, ec.url_contains("#/environments"))


def test_a_missing_workflow_says_so(browser, daemon) -> None:
    login(browser, daemon, "#/workflows/default/no-such-workflow")
    wait(browser, ec.text_to_be_present_in_element((By.ID, "wf-message"), "not found"))
    browser.find_element(By.LINK_TEXT, "Workflows").click()  # the page still works
    wait(browser, ec.visibility_of_element_located((By.ID, "workflows")))
