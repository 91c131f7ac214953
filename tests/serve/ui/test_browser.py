"""The web page in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
Selenium) against a real ``ganrt serve`` on loopback. Pixels are read back from the page (``<img>`` sources
fetched inside the page, canvases through ``toDataURL``) and compared with ``ganrt.load`` of the same files.

Skipped, with the reason, when Chromium, chromedriver or Selenium is missing (``.ci/run`` installs them).
Screenshots go to pytest's temporary folder; ``GANRT_SCREENSHOTS=docs`` writes the README's into ``docs/``.
"""

from __future__ import annotations

import base64
import io
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from ganrt.runtime.images import grid
from tests.serve.ui.conftest import MAX_PIXELS, decode_png, png_bytes

CHROMIUM = os.environ.get("GANRT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GANRT_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
WAIT_S = 60.0
DESKTOP = (1280, 900)
PHONE = (390, 844)
REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "ganrt" / "serve" / "static" / "examples"


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return (
                f"{path} not found: browser tests need Debian's {package} "
                f"(apt-get install -y chromium chromium-driver)"
            )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'ganrt[test]')"
    return None


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One headless Chromium with a fresh profile for the whole session."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium_profile')}")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(log)), options=options)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The served page in the session's browser, with helpers that read its pixels back."""

    def __init__(self, driver, url: str) -> None:
        self.driver = driver
        self.url = url
        self.allowed_console: list[str] = []

    # ---- navigation and waiting ----------------------------------------------------------------------------
    def open(self, size: tuple[int, int] = DESKTOP, *, mobile: bool = False) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": mobile},
        )
        self.driver.get(self.url)
        self.wait(
            lambda: self.js("return document.body.dataset.ready === 'true'"), "the page to list the models"
        )
        panels = self.js("return [...document.querySelectorAll('section.panel')].map(s => s.dataset.model)")
        for name in panels:
            if self.panel(name).get_attribute("data-task") == "encode":
                self.wait_idle(name)  # nothing to show until an image is uploaded
            else:
                self.wait_output(name, 0)

    def wait(self, condition: Callable[[], object], what: str, timeout_s: float = WAIT_S) -> object:
        deadline = time.monotonic() + timeout_s
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
            time.sleep(0.05)

    def js(self, script: str, *args: object) -> object:
        return self.driver.execute_script(script, *args)

    def panel(self, name: str):
        return self.driver.find_element("css selector", f'section.panel[data-model="{name}"]')

    def find(self, name: str, selector: str):
        return self.panel(name).find_element("css selector", selector)

    def outputs(self, name: str) -> int:
        return int(self.panel(name).get_attribute("data-outputs") or 0)

    def idle(self, name: str) -> bool:
        return self.panel(name).get_attribute("data-busy") == "false"

    def wait_output(self, name: str, before: int) -> None:
        """Until panel ``name`` has shown a result newer than ``before`` and has nothing left to do."""
        self.wait(lambda: self.outputs(name) > before and self.idle(name), f"a new result in panel {name!r}")

    def wait_idle(self, name: str) -> None:
        self.wait(lambda: self.idle(name), f"panel {name!r} to settle")

    def button(self, name: str, text: str):
        return self.panel(name).find_element("xpath", f".//button[normalize-space()='{text}']")

    def error(self, name: str) -> str | None:
        box = self.find(name, ".error")
        return box.text if box.is_displayed() else None

    # ---- pixels --------------------------------------------------------------------------------------------
    def img_png(self, element) -> bytes:
        """The bytes behind an <img> (a blob: URL), fetched inside the page."""
        data = self.driver.execute_async_script(
            """
            const [img, done] = arguments;
            fetch(img.src).then((r) => r.arrayBuffer()).then((buffer) => {
              const bytes = new Uint8Array(buffer);
              let text = '';
              for (let i = 0; i < bytes.length; i += 0x8000) {
                text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
              }
              done(btoa(text));
            }).catch((err) => done('error: ' + err));
            """,
            element,
        )
        assert not data.startswith("error: "), data
        return base64.b64decode(data)

    def img(self, element, channels: int) -> np.ndarray:
        return decode_png(self.img_png(element), channels)

    def canvas(self, element, channels: int) -> np.ndarray:
        url = self.js("return arguments[0].toDataURL('image/png')", element)
        return decode_png(base64.b64decode(url.split(",", 1)[1]), channels)

    def upload(self, name: str, path: Path, selector: str = "input[type=file]") -> None:
        self.find(name, selector).send_keys(str(path))

    # ---- console -------------------------------------------------------------------------------------------
    def console_errors(self) -> list[str]:
        errors = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] != "SEVERE":
                continue
            if not any(re.search(pattern, entry["message"]) for pattern in self.allowed_console):
                errors.append(entry["message"])
        return errors


@pytest.fixture
def page(browser, ui_server) -> Iterator[Page]:
    """The page freshly loaded at desktop size; the test fails on any console error it did not expect."""
    browser.get_log("browser")  # drop what earlier tests left
    p = Page(browser, ui_server.url + "/")
    p.open()
    yield p
    assert p.console_errors() == []


def _within_one_level(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape, (got.shape, expected.shape)
    diff = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    assert diff.max() <= 1, (
        f"max difference {diff.max()} levels at {np.unravel_index(diff.argmax(), diff.shape)}"
    )


# ---- the page ----------------------------------------------------------------------------------------------
def test_every_model_gets_a_panel_fitted_to_its_task(page, ui_models):
    panels = page.js(
        "return [...document.querySelectorAll('section.panel')].map(s => [s.dataset.model, s.dataset.task])"
    )
    assert panels == [
        ["pix2pix", "translate"],
        ["cyclegan", "translate"],
        ["vae", "sample"],
        ["vae_decoder", "sample"],
        ["dcgan", "sample"],
        ["cgan", "sample"],
        ["vae_encoder", "encode"],
    ]
    links = page.js("return [...document.querySelectorAll('#model-nav a')].map(a => a.textContent)")
    assert links == list(ui_models)
    for name in ("pix2pix", "cyclegan"):
        canvas = page.find(name, "canvas.drawing")
        assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("32", "32")  # native size
        assert page.find(name, "img.result").get_attribute("src").startswith("blob:")
        assert "onnxruntime on cpu" in page.find(name, ".status").text
        assert re.search(r"\d+\.\d ms on the server", page.find(name, ".status").text)
    assert "padded to a multiple of 32" in page.find("pix2pix", ".lead").text
    assert "resized to 32×32" in page.find("cyclegan", ".lead").text
    assert len(page.panel("vae").find_elements("css selector", "figure.slot")) == 2
    assert page.panel("vae_decoder").find_elements("css selector", "figure.slot") == []
    assert page.find("cgan", "select.classes").get_attribute("value") == "rows"
    assert page.panel("dcgan").find_elements("css selector", "select.classes") == []
    for name in ui_models:
        assert page.error(name) is None


# ---- translators -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pix2pix", "cyclegan"], ids=["pad", "resize"])
def test_upload_translates_like_ganrt_load(page, ui_reference, photo, tmp_path, name):
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(photo))
    before = page.outputs(name)
    page.upload(name, path)
    page.wait_output(name, before)
    got = page.img(page.find(name, "img.result"), 3)
    _within_one_level(got, ui_reference[name](photo))
    # the input shows the upload at its own size, drawn over nothing
    np.testing.assert_array_equal(page.canvas(page.find(name, "canvas.drawing"), 3), photo)
    assert page.find(name, "figcaption .note").text.startswith("52×40")


def test_drawing_with_the_mouse_updates_the_output(page, ui_server, ui_reference):
    from selenium.webdriver import ActionChains

    name = "pix2pix"
    before = page.outputs(name)
    page.button(name, "Clear").click()
    page.wait_output(name, before)
    canvas = page.find(name, "canvas.drawing")
    blank = page.canvas(canvas, 3)
    assert (blank == 255).all()
    blank_output = page.img(page.find(name, "img.result"), 3)

    before = page.outputs(name)
    # real pointer input: press, drag through several points, release (offsets from the canvas centre)
    chain = ActionChains(page.driver)
    chain.move_to_element_with_offset(canvas, -120, -100).click_and_hold()
    for dx, dy in ((60, 40), (60, 50), (70, -20), (40, 90)):
        chain.move_by_offset(dx, dy)
    chain.release().perform()
    page.wait_output(name, before)
    drawn = page.canvas(canvas, 3)
    assert (drawn < 128).any(), "the stroke left no dark pixels"
    shown = page.img(page.find(name, "img.result"), 3)
    assert not np.array_equal(shown, blank_output), "the output did not change"
    _within_one_level(shown, ui_reference[name](drawn))
    # exactly what the server answers for the canvas content
    answer = httpx.post(
        f"{ui_server.url}/v1/models/{name}/translate",
        content=png_bytes(drawn),
        headers={"content-type": "image/png"},
    )
    np.testing.assert_array_equal(shown, decode_png(answer.content, 3))

    # eraser over the whole stroke path, then Ctrl+Z (keyboard) restores the drawing and its output
    before = page.outputs(name)
    page.button(name, "Eraser").click()
    assert page.button(name, "Eraser").get_attribute("aria-pressed") == "true"
    chain = ActionChains(page.driver)
    chain.move_to_element_with_offset(canvas, -60, -60).click_and_hold().move_by_offset(
        40, 40
    ).release().perform()
    page.wait_output(name, before)
    erased = page.canvas(canvas, 3)
    assert (erased == 255).sum() > (drawn == 255).sum()
    from selenium.webdriver.common.keys import Keys

    before = page.outputs(name)
    ActionChains(page.driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    page.wait_output(name, before)
    np.testing.assert_array_equal(page.canvas(canvas, 3), drawn)
    np.testing.assert_array_equal(page.img(page.find(name, "img.result"), 3), shown)


def test_start_from_example_loads_a_bundled_input(page, ui_server, ui_reference):
    name = "pix2pix"
    examples = next(c for c in httpx.get(f"{ui_server.url}/v1/models").json()["models"] if c["name"] == name)
    canvas = page.find(name, "canvas.drawing")
    # the page opened on the first example; the button moves on to the next
    first = decode_png(httpx.get(f"{ui_server.url}/{examples['examples'][0]}").content, 3)
    np.testing.assert_array_equal(page.canvas(canvas, 3), first)
    before = page.outputs(name)
    page.button(name, "Start from example").click()
    page.wait_output(name, before)
    second = decode_png(httpx.get(f"{ui_server.url}/{examples['examples'][1]}").content, 3)
    np.testing.assert_array_equal(page.canvas(canvas, 3), second)
    _within_one_level(page.img(page.find(name, "img.result"), 3), ui_reference[name](second))


def test_drag_and_drop_an_image(page, ui_reference, photo):
    name = "cyclegan"
    before = page.outputs(name)
    page.driver.execute_async_script(
        """
        const [target, data, done] = arguments;
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'photo.png', { type: 'image/png' }));
        for (const type of ['dragenter', 'dragover', 'drop']) {
          const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
          target.dispatchEvent(new DragEvent(type, init));
        }
        done();
        """,
        page.find(name, "canvas.drawing"),
        base64.b64encode(png_bytes(photo)).decode(),
    )
    page.wait_output(name, before)
    _within_one_level(page.img(page.find(name, "img.result"), 3), ui_reference[name](photo))


def test_download_button_saves_the_output(page, tmp_path):
    page.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    link = page.find("pix2pix", "a[download]")
    assert link.get_attribute("download") == "pix2pix-output.png"
    link.click()
    target = tmp_path / "pix2pix-output.png"
    page.wait(lambda: target.is_file() and target.stat().st_size > 0, "the download")
    assert target.read_bytes() == page.img_png(page.find("pix2pix", "img.result"))


# ---- samplers ----------------------------------------------------------------------------------------------
def _set_seed(page: Page, name: str, seed: str) -> None:
    from selenium.webdriver.common.keys import Keys

    before = page.outputs(name)
    field = page.find(name, "input.seed")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(seed, Keys.ENTER)
    page.wait_output(name, before)


def test_sampler_seed_gives_the_images_of_ganrt_sample(page, ui_reference):
    name = "dcgan"
    _set_seed(page, name, "3")
    model = ui_reference[name]
    np.testing.assert_array_equal(page.img(page.find(name, "img.grid"), 1), grid(model.sample(16, seed=3)))
    assert page.find(name, "code.cli").text == "ganrt sample dcgan -n 16 --seed 3 -o grid.png"

    before = page.outputs(name)
    page.button(name, "New seed").click()
    page.wait_output(name, before)
    seed = int(page.find(name, "input.seed").get_attribute("value"))
    assert seed != 3
    np.testing.assert_array_equal(page.img(page.find(name, "img.grid"), 1), grid(model.sample(16, seed=seed)))


def test_cgan_one_row_per_class_or_one_class(page, ui_reference):
    from selenium.webdriver.support.select import Select

    name = "cgan"
    model = ui_reference[name]
    _set_seed(page, name, "3")
    per_class = int(page.find(name, "input.count").get_attribute("value"))
    labels = np.repeat(np.arange(10), per_class)
    expected = grid(model.sample(10 * per_class, seed=3, labels=labels), per_class)
    np.testing.assert_array_equal(page.img(page.find(name, "img.grid"), 1), expected)
    assert page.js("return arguments[0].children.length", page.find(name, "ol.row-labels")) == 10

    before = page.outputs(name)
    Select(page.find(name, "select.classes")).select_by_value("7")
    page.wait_output(name, before)
    n = int(page.find(name, "input.count").get_attribute("value"))
    np.testing.assert_array_equal(
        page.img(page.find(name, "img.grid"), 1), grid(model.sample(n, seed=3, labels=7))
    )
    assert not page.find(name, "ol.row-labels").is_displayed()


# ---- VAE ---------------------------------------------------------------------------------------------------
def _slider_frames(page: Page, name: str) -> np.ndarray:
    """Every frame the slider shows, moved with the keyboard (Home, then the right arrow)."""
    from selenium.webdriver.common.keys import Keys

    slider = page.find(name, "input.position")
    count = int(slider.get_attribute("max")) + 1
    slider.send_keys(Keys.HOME)
    frames = []
    for k in range(count):
        if k:
            slider.send_keys(Keys.ARROW_RIGHT)
        assert slider.get_attribute("value") == str(k)
        frames.append(page.canvas(page.find(name, "canvas.frame-canvas"), 1))
    return np.stack(frames)


def test_vae_slider_frames_equal_interpolate(page, ui_reference, faces, tmp_path):
    name = "vae"
    model = ui_reference[name]
    from PIL import Image

    bundled = [np.array(Image.open(p))[:, :, None] for p in sorted(EXAMPLES.glob("face-*.png"))]
    # the page opens on the first two bundled faces
    _within_one_level(_slider_frames(page, name), model.interpolate(bundled[0], bundled[1], steps=9))
    # picking a thumbnail replaces A (then B, alternately)
    before = page.outputs(name)
    page.find(name, "button.thumb:nth-of-type(3)").click()
    page.wait_output(name, before)
    _within_one_level(_slider_frames(page, name), model.interpolate(bundled[2], bundled[1], steps=9))

    for key, face in zip("ab", faces, strict=True):
        path = tmp_path / f"{key}.png"
        path.write_bytes(png_bytes(face))
        before = page.outputs(name)
        page.upload(name, path, f"figure.slot:nth-of-type({1 + (key == 'b')}) input[type=file]")
        page.wait_output(name, before)
    _within_one_level(_slider_frames(page, name), model.interpolate(faces[0], faces[1], steps=9))


def test_decoder_only_vae_walks_from_a_seed(page, ui_reference):
    name = "vae_decoder"
    model = ui_reference[name]
    _set_seed(page, name, "3")
    _within_one_level(_slider_frames(page, name), model.interpolate(3, 4, steps=9))
    before = page.outputs(name)
    page.button(name, "Walk on").click()
    page.wait_output(name, before)
    assert page.find(name, "input.seed").get_attribute("value") == "4"
    _within_one_level(_slider_frames(page, name), model.interpolate(4, 5, steps=9))


def test_encoder_alone_shows_the_encoding(page, ui_reference, faces, tmp_path):
    name = "vae_encoder"
    path = tmp_path / "face.png"
    path.write_bytes(png_bytes(faces[0]))
    page.upload(name, path)
    page.wait_output(name, 0)
    mu = ui_reference[name].encode(faces[0])[0][0]
    text = page.find(name, "output.latent").text
    assert text.startswith("mu = [") and text.endswith("]")
    shown = np.array([float(v) for v in text[6:-1].split(", ")])
    np.testing.assert_allclose(shown, mu, rtol=0, atol=5e-4 + 1e-6)  # printed with 3 decimals
    np.testing.assert_array_equal(page.img(page.find(name, "img.result"), 1), faces[0])


# ---- errors ------------------------------------------------------------------------------------------------
def test_uploading_a_text_file_shows_the_servers_message(page, ui_reference, tmp_path):
    name = "pix2pix"
    page.allowed_console.append(r"/v1/models/pix2pix/translate - Failed to load resource: .* 415")
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    output_before = page.img_png(page.find(name, "img.result"))
    page.upload(name, path)
    message = page.wait(lambda: page.error(name), "the error message")
    assert message == (
        "Wrong file type: Content-Type must be one of image/jpeg, image/jpg, image/png, got 'text/plain'"
    )
    page.wait_idle(name)
    # the page is not broken: the previous result stays, and the next input works and clears the message
    assert page.img_png(page.find(name, "img.result")) == output_before
    before = page.outputs(name)
    page.button(name, "Start from example").click()
    page.wait_output(name, before)
    assert page.error(name) is None


def test_too_large_an_image_shows_the_limit(page, tmp_path):
    name = "cyclegan"
    page.allowed_console.append(r"/v1/models/cyclegan/translate - Failed to load resource: .* 413")
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(np.full((600, 600, 3), 200, np.uint8)))
    page.upload(name, path)
    message = page.wait(lambda: page.error(name), "the error message")
    assert message.startswith("Too large: ") and "image has 600x600 = 360000 pixels" in message
    assert f"limit of {MAX_PIXELS}" in message


def test_busy_server_is_retried_after_retry_after(browser, tight_server, slow_translator):
    """A full queue answers 503 + Retry-After: the panel says so, retries, and shows the result.

    ``tight_server`` (tests/serve/conftest.py) serves a slow translator as "pix2pix" behind a queue of one; other
    clients keep that queue full while the page asks."""
    import threading

    import ganrt

    name = "pix2pix"
    browser.get_log("browser")
    page = Page(browser, tight_server.url + "/")
    page.allowed_console.append(rf"/v1/models/{name}/translate - Failed to load resource: .* 503")
    page.open()
    load = png_bytes(np.full((256, 256, 3), 90, np.uint8))
    stop = threading.Event()

    def flood() -> None:  # one request computing, one queued, the others refilling the queue at once
        with httpx.Client(base_url=tight_server.url, timeout=60) as client:
            while not stop.is_set():
                client.post(
                    f"/v1/models/{name}/translate", content=load, headers={"content-type": "image/png"}
                )

    workers = [threading.Thread(target=flood) for _ in range(4)]
    for worker in workers:
        worker.start()
    message = None
    try:
        deadline = time.monotonic() + 60
        while message is None and time.monotonic() < deadline:
            # each press sends one translate request; one that finds the queue full gets 503
            before = page.outputs(name)
            page.button(name, "Start from example").click()
            try:
                message = page.wait(lambda: page.error(name), "the busy message", timeout_s=2)
            except AssertionError:
                continue
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    assert message is not None, "no request of the page met a full queue within 60 s"
    assert re.fullmatch(
        rf"Server busy: model '{name}' has 1 requests queued \(--max-queue\); retry later; retrying in 1 s",
        message,
    ), message
    page.wait_output(name, before)
    assert page.error(name) is None
    canvas = page.canvas(page.find(name, "canvas.drawing"), 3)
    with ganrt.load(slow_translator) as model:
        _within_one_level(page.img(page.find(name, "img.result"), 3), model(canvas))
    assert page.console_errors() == []


# ---- accessibility and layout ------------------------------------------------------------------------------
def test_controls_have_names_and_work_from_the_keyboard(page, ui_reference):
    from selenium.webdriver.common.keys import Keys

    controls = page.driver.find_elements("css selector", "main button, main input, main select, main a[href]")
    assert len(controls) > 30
    unnamed = [c.get_attribute("outerHTML")[:80] for c in controls if not c.accessible_name.strip()]
    assert unnamed == []
    # Tab from the seed field reaches "New seed"; Enter presses it
    name = "dcgan"
    page.find(name, "input.seed").click()
    page.driver.switch_to.active_element.send_keys(Keys.TAB)
    focused = page.driver.switch_to.active_element
    assert focused.text == "New seed"
    before = page.outputs(name)
    focused.send_keys(Keys.ENTER)
    page.wait_output(name, before)
    seed = int(page.find(name, "input.seed").get_attribute("value"))
    np.testing.assert_array_equal(
        page.img(page.find(name, "img.grid"), 1), grid(ui_reference[name].sample(16, seed=seed))
    )


def _screenshot(page: Page, path: Path) -> None:
    """The whole page as PNG, reduced to 256 colours (a third of the bytes, for the README)."""
    from PIL import Image

    metrics = page.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    width, height = metrics["cssContentSize"]["width"], metrics["cssContentSize"]["height"]
    shot = page.driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )


def _box(page: Page, element) -> dict[str, float]:
    return page.js(
        "const r = arguments[0].getBoundingClientRect(); return {left: r.left, right: r.right, "
        "top: r.top, bottom: r.bottom}",
        element,
    )


@pytest.mark.parametrize(
    "size,mobile,picture",
    [(DESKTOP, False, "web_ui_desktop.png"), (PHONE, True, "web_ui_phone.png")],
    ids=["desktop", "phone"],
)
def test_layout_and_screenshots(page, tmp_path, size, mobile, picture):
    page.open(size, mobile=mobile)
    assert page.js("return document.documentElement.scrollWidth") <= size[0], "the page scrolls sideways"
    canvas, output = (
        _box(page, page.find("pix2pix", "canvas.drawing")),
        _box(page, page.find("pix2pix", "img.result")),
    )
    if mobile:
        assert output["top"] >= canvas["bottom"], "input and output should stack on a phone"
    else:
        assert output["left"] >= canvas["right"] and abs(output["top"] - canvas["top"]) < 1, "side by side"
    for control in page.driver.find_elements("css selector", "main button, main select, main .file-picker"):
        box = _box(page, control)
        assert 0 <= box["left"] and box["right"] <= size[0], control.get_attribute("outerHTML")[:80]
    folder = REPO / "docs" if os.environ.get("GANRT_SCREENSHOTS") == "docs" else tmp_path
    _screenshot(page, folder / picture)
    assert decode_png((folder / picture).read_bytes(), 3).shape[1] <= size[0]
