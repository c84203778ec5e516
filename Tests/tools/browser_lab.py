#!/usr/bin/env python3
"""JupyterLab through the portal in a real browser (Debian's chromium, driven by Selenium): the
requests are the browser's own, with its Origin and Sec-Fetch-* headers and its cookies.

  browser_lab.py ORIGIN LAB_PATH COOKIE_NAME COOKIE_VALUE SCREENSHOT

Sets the portal's session cookie on ORIGIN (e.g. http://127.0.0.1:8080), opens LAB_PATH
(/user/<user>/<course>/lab), creates a Python notebook from the launcher (a POST of the page's own),
runs `print(6*7)` in its first cell (the kernel's WebSocket) and waits for the output. Prints
{"title", "output", "token_in_page", "errors", "stage", "network_changes"} (errors: what the
browser's console logged as severe; stage: how far it got, with the status bar and the cell's text
when it failed; network_changes: how often the page was loaded again because the machine's network
interfaces changed under it); saves a screenshot to SCREENSHOT (for looking at when it fails). Gives up after minutes.
"""
import json
import os
import sys

os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

LIVENESS = 240


def attempt(driver, origin, lab_path):
    """One go at it, from loading the page; what happened."""
    result = {}
    try:
        driver.get(origin + lab_path)
        wait = WebDriverWait(driver, LIVENESS)
        result["title"] = driver.title
        result["stage"] = "launcher"
        result["token_in_page"] = driver.execute_script(
            "return document.body.getAttribute('data-jupyter-api-token') || "
            "JSON.parse(document.getElementById('jupyter-config-data')?.textContent || '{}').token || ''")
        card = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, ".jp-LauncherCard[data-category='Notebook']")))
        card.click()
        editor = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell .cm-content")))
        # The status bar says "Python 3 (ipykernel) | Idle" once the kernel's WebSocket is up.
        result["stage"] = "kernel"
        wait.until(lambda d: "Idle" in d.execute_script("return document.getElementById('jp-main-statusbar')?.innerText || ''"))
        result["stage"] = "run"
        editor.click()
        editor.send_keys("print(6*7)")
        editor.send_keys(Keys.SHIFT, Keys.ENTER)
        output = wait.until(lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-OutputArea-output") if e.text.strip()])
        result["output"] = output[0].strip()
        result["stage"] = "done"
    except WebDriverException as failed:
        # Say where it stopped, for the test's message.
        result["failure"] = failed.msg
        result["statusbar"] = driver.execute_script("return document.getElementById('jp-main-statusbar')?.innerText || ''")
        result["cell"] = driver.execute_script("return document.querySelector('.jp-NotebookPanel .jp-Cell')?.innerText || ''")
    result["errors"] = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return result


def main(origin, lab_path, cookie_name, cookie_value, screenshot):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.set_page_load_timeout(LIVENESS)
        driver.get(origin + "/healthz")
        driver.add_cookie({"name": cookie_name, "value": cookie_value, "path": "/"})
        # Chromium aborts what is in flight when the machine's network interfaces change
        # (net::ERR_NETWORK_CHANGED), which other tests' containers and namespaces do: that, and
        # only that, is the machine's doing, and the page is loaded again (at most three times).
        network_changes = 0
        while True:
            result = attempt(driver, origin, lab_path)
            changed = any("ERR_NETWORK_CHANGED" in error for error in result["errors"])
            if "output" in result or not changed or network_changes == 2:
                break
            network_changes += 1
        result["network_changes"] = network_changes
        try:
            driver.save_screenshot(screenshot)
        except WebDriverException:
            pass
    finally:
        driver.quit()
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
