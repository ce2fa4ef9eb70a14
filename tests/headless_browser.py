"""A headless Chromium driven through Selenium, for the tests of the pages rnnkit writes and serves.

Needs Debian's chromium and chromium-driver (`apt-get install -y chromium chromium-driver`) and the selenium
package (`pip install selenium`); without them :func:`headless_chromium` skips the test and says so.
"""

import contextlib
import shutil

import pytest

CHROMIUM = next((path for path in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if path), None)
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL = "install it with: apt-get install -y chromium chromium-driver (Debian) and pip install selenium"


@contextlib.contextmanager
def headless_chromium(width: int, height: int = 1000):
    """A Chrome driver of a ``width`` × ``height`` window that keeps the browser's console and performance logs
    (``driver.get_log("browser")``, ``"performance"``), quit on leaving; skips the test when there is none."""
    pytest.importorskip("selenium", reason=f"the selenium package is not installed; {INSTALL}")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(f"no headless browser: chromium or chromedriver is not installed; {INSTALL}")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
