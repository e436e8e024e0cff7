"""The web chat page in a real headless browser (Chromium from Debian's packages).

Skips with the reason when selenium, chromium or chromedriver is missing
(`.ci/run` installs them: apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

from fakegen import FakeGenerator  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from chatbot import Chatbot  # noqa: E402
from chatbot.botdir import load_bot  # noqa: E402
from chatbot.serve import create_app  # noqa: E402
from chatbot.session import SQLiteStore  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="no browser: apt-get install chromium chromium-driver",
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Chatbot]]:
    bot = Chatbot(load_bot().intents, generator=FakeGenerator(),
                  store=SQLiteStore(tmp_path / "s.sqlite3"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(bot), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", bot
    running.should_exit = True
    thread.join(10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(DRIVER)))
    yield driver
    driver.quit()


def messages(driver: webdriver.Chrome) -> list[tuple[str, str]]:
    return [(m.get_attribute("class").split()[1], m.text)  # type: ignore[union-attr]
            for m in driver.find_elements(By.CSS_SELECTOR, "#log .msg")]


def test_type_a_message_see_the_reply_reload_and_the_conversation_is_still_there(
    server: tuple[str, Chatbot], browser: webdriver.Chrome,
) -> None:
    url, bot = server
    wait = WebDriverWait(browser, 20)
    browser.get(url)
    for text, count in [("hi", 2), ("do you like pizza?", 4)]:
        box = wait.until(expected_conditions.element_to_be_clickable((By.ID, "text")))
        box.send_keys(text + "\n")
        wait.until(lambda d, n=count: len(d.find_elements(By.CSS_SELECTOR, "#log .bot")) == n // 2)
    shown = messages(browser)
    [session_id] = bot.store.ids()
    stored = bot.store.load(session_id)
    assert stored is not None
    said = [(e["type"], e["text"] + (e["source"] if e["type"] == "bot" else ""))
            for e in stored["events"] if e["type"] in ("user", "bot")]
    assert [(kind, text.replace("\n", "")) for kind, text in shown] == said
    assert shown[1][1].endswith("intent") and shown[3][1].endswith("neural")

    browser.find_elements(By.CSS_SELECTOR, "#log .bot")[1].click()  # why this reply
    why = browser.find_element(By.ID, "why")
    assert why.is_displayed() and "decided by: neural" in why.text

    browser.refresh()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log .msg")) == 4)
    assert messages(browser) == shown
    browser.find_elements(By.CSS_SELECTOR, "#log .bot")[0].click()
    assert "No trace was kept" in browser.find_element(By.ID, "why").text

    box = browser.find_element(By.ID, "text")  # the turn count survives the reload
    box.send_keys("what's my name\n")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log .bot")) == 3)
    assert bot.store.ids() == [session_id]
    stored = bot.store.load(session_id)
    assert stored is not None and [e["text"] for e in stored["events"]
                                   if e["type"] == "user"] == ["hi", "do you like pizza?",
                                                               "what's my name"]
