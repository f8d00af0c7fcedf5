"""zhrnn serve (issue 18): the API gives the CLI's text, streamed; requests share one forward pass
a step; hostile requests get a clean 4xx and the server keeps serving; the page works in a real
browser."""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("starlette", reason="zhrnn serve needs the serve extra (pip install 'zhrnn[serve]')")
pytest.importorskip("httpx", reason="the API is tested through httpx")

from starlette.testclient import TestClient  # noqa: E402

import zhrnn  # noqa: E402
from zhrnn.generation import SampleConfig  # noqa: E402
from zhrnn.generation.sampling import Sampling  # noqa: E402
from zhrnn.serve import load_models  # noqa: E402
from zhrnn.serve.app import create_app  # noqa: E402
from zhrnn.serve.batcher import Batcher, Job  # noqa: E402
from zhrnn.serve.requests import Limits  # noqa: E402

from .conftest import POEMS, REPO  # noqa: E402


@pytest.fixture(scope="module")
def models(trained):
    return load_models([str(trained.run_dir)])


@pytest.fixture(scope="module")
def client(models):
    with TestClient(create_app(models, Limits(rows=16)), base_url="http://127.0.0.1") as c:
        yield c


def events(client, **body):
    """The server-sent events of one /api/generate request, parsed."""
    with client.stream("POST", "/api/generate", json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return [json.loads(line[len("data: "):]) for line in r.iter_lines() if line.startswith("data: ")]


def test_a_request_streams_the_text_the_cli_writes(client, trained):
    model = zhrnn.load(trained.run_dir)
    got = events(client, start="床", greedy=True, length=24)
    assert got[-1] == {"done": True, "texts": [POEMS[:24]], "rhymes": [[]]}
    assert "".join(e["text"] for e in got[:-1]) == POEMS[:24] and len(got) > 3  # piece by piece
    # sampled with a seed: the same texts as the Python API (and the CLI) with that seed
    body = dict(start="春", length=40, num=3, seed=7, temperature=1.5)
    texts = events(client, **body)[-1]["texts"]
    assert texts == model.generate_many(3, start="春", length=40, seed=7, temperature=1.5)
    pieces = ["", "", ""]
    for e in events(client, **body)[:-1]:
        pieces[e["i"]] += e["text"]
    assert pieces == texts
    # drafts of lines: an output streams only its chosen lines, whatever the other outputs' drafts do
    body = dict(start="春", length=60, num=2, seed=3, temperature=1.5, candidates=3)
    got = events(client, **body)
    pieces = ["", ""]
    for e in got[:-1]:
        pieces[e["i"]] += e["text"]
    assert pieces == got[-1]["texts"] == model.generate_many(2, start="春", length=60, seed=3, temperature=1.5,
                                                             candidates=3)


def test_requests_join_and_leave_one_running_batch(trained):
    model = zhrnn.load(trained.run_dir)
    batcher = Batcher(model.model, max_rows=64)
    asks = [("床", SampleConfig(length=60, seed=s, temperature=1.2), 2) for s in range(4)]
    asks += [("白日", SampleConfig(greedy=True, length=30), 1), ("千", SampleConfig(length=90, seed=9, candidates=3), 1)]
    finished, done = {}, threading.Event()

    def emit_for(i):
        def emit(event):
            if event[0] != "piece":
                finished[i] = event
                if len(finished) == len(asks):
                    done.set()
        return emit

    for i, (start, cfg, num) in enumerate(asks):
        batcher.submit(Job(Sampling(model.tokenizer, start, cfg, num), emit_for(i)))
    assert done.wait(60)
    batcher.stop()
    for i, (start, cfg, num) in enumerate(asks):
        texts = zhrnn.generation.sample(model.model, model.tokenizer, start, cfg, num)
        assert finished[i] == ("done", texts, [[]] * num), i
    # one forward pass a step for all of them: fewer passes than the longest request alone would
    # need plus the others, and at least once every row of every request in one pass
    assert batcher.steps < 2 * 90 + 16 and batcher.widest >= 2 * 4 + 1 + 3


def test_a_listener_that_fails_ends_its_request_not_the_batcher(trained):
    model = zhrnn.load(trained.run_dir)
    batcher = Batcher(model.model, max_rows=8)

    def broken(i, piece):
        raise RuntimeError("the event loop is closed")

    seen = []
    batcher.submit(Job(Sampling(model.tokenizer, "床", SampleConfig(length=50), 1, on_piece=broken), seen.append))
    done = threading.Event()
    batcher.submit(Job(Sampling(model.tokenizer, "床", SampleConfig(greedy=True, length=12), 1),
                       lambda e: (seen.append(e), done.set()) if e[0] == "done" else None))
    assert done.wait(30) and ("done", [POEMS[:12]], [[]]) in seen and seen[0][0] == "error"
    assert batcher.call(lambda: 42).result(10) == 42  # still serving
    batcher.stop()


def test_a_client_that_goes_away_frees_its_stream(trained):
    model = zhrnn.load(trained.run_dir)
    batcher = Batcher(model.model, max_rows=4)
    events_seen = []
    job = Job(Sampling(model.tokenizer, "床", SampleConfig(length=2000, temperature=1.0), 4), events_seen.append)
    assert batcher.submit(job) and not batcher.submit(Job(Sampling(model.tokenizer, "春", SampleConfig(), 1), print))
    while not events_seen:
        time.sleep(0.01)
    job.cancel()
    for _ in range(500):
        if batcher.submit(Job(Sampling(model.tokenizer, "春", SampleConfig(length=5), 4), events_seen.append)):
            break
        time.sleep(0.01)
    else:
        pytest.fail("the cancelled job kept its rows")
    batcher.stop()


HOSTILE = [  # (body, status, a fragment of the error)
    ({"length": 10**12}, 400, "length"), ({"length": -5}, 400, "length"), ({"num": 0}, 400, "num"),
    ({"num": 10**6}, 400, "num"), ({"length": "100"}, 400, "integer"), ({"length": 1.5}, 400, "integer"),
    ({"greedy": "yes"}, 400, "true or false"), ({"temperature": 0}, 400, "temperature"),
    ({"temperature": float("nan")}, 400, "temperature"), ({"num": True}, 400, "integer"),
    ({"candidates": 100}, 400, "candidates"), ({"num": 8, "candidates": 8}, 400, "num x candidates"),
    ({"seed": -(2**63) - 1}, 400, "seed"), ({"start": ["床"]}, 400, "string"), ({"start": "床" * 10_000}, 413, "start"),
    ({"model": "../../etc/passwd"}, 404, "no model"), ({"model": "/tmp/x.pt"}, 404, "no model"),
    ({"model": "唐诗"}, 404, "no model"), ({"model": {"path": "x"}}, 404, "no model"),
    ({"start": "☃☃"}, 400, "does not know"), ({"label": "李白"}, 400, "without labels"),
    ({"form": "十言绝句"}, 400, "form"), ({"start": "\ud800"}, 400, "surrogate"), ({"\ud800": 1}, 400, "unknown field"), ({"tones": "rm -rf"}, 400, "tones"), ({"path": "/etc/passwd"}, 400, "unknown field"),
    # read as SampleConfig declares them, in the CLI's words; the server's own tops where it has them
    ({"top_k": 0}, 400, "--top-k must be at least 1, not 0"),
    ({"repetition_window": 10**30}, 400, "--repetition-window"),
    ({"temperature": [0.5, "hot"]}, 400, "a number or a list"), ({"num_paragraphs": 11}, 400, "from 1 to 10"),
    ({"seed": 2**64}, 400, "--seed"), ({"beam": 4}, 400, "unknown field"), ({"no_repeat_scope": 1}, 400, "string"),
]


@pytest.mark.parametrize("body,status,fragment", HOSTILE)
def test_hostile_requests_get_a_clean_4xx(client, body, status, fragment):
    r = client.post("/api/generate", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code == status and fragment in r.json()["error"], r.text


def test_malformed_bodies_and_hosts_get_a_clean_4xx_and_the_server_keeps_serving(client):
    json_type = {"Content-Type": "application/json"}
    assert client.post("/api/generate", content=b"{not json", headers=json_type).status_code == 400
    assert client.post("/api/generate", content=b"[1, 2]", headers=json_type).status_code == 400
    assert client.post("/api/generate", content=b"\xff\xfe", headers=json_type).status_code == 400
    assert client.post("/api/generate", content=b"[" * 30_000 + b"]" * 30_000, headers=json_type).status_code == 400
    assert client.post("/api/generate", content=b'{"num": ' + b"9" * 5_000 + b"}", headers=json_type).status_code == 400
    big = client.post("/api/generate", content=b'{"start": "' + b"a" * 1_000_000 + b'"}', headers=json_type)
    assert big.status_code == 413 and "bytes" in big.json()["error"]
    plain = client.post("/api/generate", content='{"start": "床"}'.encode(), headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415  # what a page of another site could send without asking
    assert client.get("/api/generate").status_code == 405
    assert client.get("/nothing").status_code == 404 and "error" in client.get("/nothing").json()
    assert client.get("/api/models/..%2F..%2Fetc/curve.svg").status_code == 404
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400  # DNS rebinding
    assert client.post("/api/score", json={"text": ""}).status_code == 400
    assert client.post("/api/score", json={"text": "床" * 30_000}).status_code == 413
    assert client.post("/api/next", json={"k": 10**9}).status_code == 400
    assert client.post("/api/next", content=json.dumps({"text": "\ud800"}), headers=json_type).status_code == 400
    assert client.post("/api/next", json={"text": "床" * 2_001}).status_code == 413
    assert "access-control-allow-origin" not in client.get("/api/models", headers={"Origin": "http://evil.example"}).headers
    assert events(client, start="床", greedy=True, length=12)[-1]["texts"] == [POEMS[:12]]  # still serving


def test_too_many_parallel_streams_wait_their_turn_with_429(models):
    with TestClient(create_app(models, Limits(rows=4)), base_url="http://127.0.0.1") as c:
        app_batcher = next(iter(c.app.state.served.values())).batcher
        assert app_batcher.submit(Job(Sampling(models[next(iter(models))].tokenizer, "床",
                                               SampleConfig(length=2000, temperature=1.0), 4), lambda e: None))
        busy = c.post("/api/generate", json={"start": "春", "length": 10})
        assert busy.status_code == 429 and "try again" in busy.json()["error"]


def test_score_next_and_cards(client, models, trained):
    model = zhrnn.load(trained.run_dir)
    scored = client.post("/api/score", json={"text": POEMS}).json()
    expected = zhrnn.generation.score.score_text(model.model, model.tokenizer, POEMS, model.info["corpus_config"])
    assert scored["bpc"] == pytest.approx(expected.bpc) and "".join(p for p, _ in scored["pieces"]) == POEMS
    offered = client.post("/api/next", json={"text": "床前明", "k": 3, "lines": 2, "seed": 0}).json()
    assert offered["top"][0][0] == "月" and offered["top"][0][1] > 0.5 and len(offered["top"]) == 3
    assert offered["lines"] and offered["lines"][0][0].startswith("月")
    after = client.post("/api/next", json={"text": POEMS.splitlines()[0] + "\n", "k": 5}).json()
    assert after["top"] and all(token != "^" for token, _ in after["top"])  # a marker is not offered as text
    listed = client.get("/api/models").json()
    (card,) = listed["models"]
    assert card["name"] == "run" and card["vocab"] == len(model.tokenizer) and card["curve"] and listed["limits"]["num"]
    assert all("/" not in source for source in card["corpus"])  # file names, never paths
    svg = client.get("/api/models/run/curve.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<polyline" in svg.text
    page = client.get("/").text
    assert "innerHTML" not in page and "textContent" in page  # model output is set as text, never as markup


def test_serve_command_refuses_bad_input_in_one_line(tmp_path):
    from .conftest import assert_clean_error, run_cli

    assert_clean_error(run_cli("serve", "--model", "没有这个模型", cwd=tmp_path), "no checkpoint")
    assert_clean_error(run_cli("serve", "--port", "70000", cwd=tmp_path), "--port")


@pytest.fixture
def live_server(models):
    """The app on a real socket (uvicorn in a thread), as a browser reaches it."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(models), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", server
    server.should_exit = True
    thread.join(10)


def test_a_client_that_disconnects_mid_stream_frees_its_rows(live_server):
    url, server = live_server
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"start": "床", "length": 2000, "num": 8, "temperature": 1.0}).encode()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert b"200 OK" in s.recv(4096)
    batcher = next(iter(server.config.app.state.served.values())).batcher
    for _ in range(300):  # gone within a few seconds: its rows leave the batch
        if batcher._rows == 0:
            break
        time.sleep(0.02)
    assert batcher._rows == 0


def browser():
    """Headless Chromium through selenium, on the system's browser and driver (nothing downloaded)."""
    selenium = pytest.importorskip("selenium", reason="the browser test drives Chromium through selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not (binary and driver):
        pytest.skip("no Chromium and chromedriver installed (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1100,900"):
        options.add_argument(flag)
    del selenium
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_page_streams_text_in_a_real_browser(live_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    driver = browser()
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        start = driver.find_element(By.ID, "start")
        start.send_keys("床")
        driver.find_element(By.ID, "length").clear()
        driver.find_element(By.ID, "length").send_keys("24")
        driver.find_element(By.ID, "seed").send_keys("0")
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: d.find_element(By.ID, "go").is_enabled()
                   and len(d.find_element(By.CSS_SELECTOR, "#outputs .out").text) == 24)
        text = driver.find_element(By.CSS_SELECTOR, "#outputs .out").text
        assert text.startswith("床") and not driver.find_element(By.ID, "write-error").text
        driver.find_element(By.CSS_SELECTOR, "nav button[data-tab=cards]").click()
        assert "run" in driver.find_element(By.ID, "card-list").text
    finally:
        driver.quit()


def test_twenty_seconds_of_mixed_clients_leave_the_server_as_it_was(trained):
    """benchmarks/serve_soak.py in brief: waves of 16 clients streaming, cancelling, asking for long
    texts and sending hostile bodies against a real `zhrnn serve` process."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "serve_soak.py"), "--model", str(trained.run_dir),
                           "--seconds", "20", "--clients", "16", "--json"], capture_output=True, text=True,
                          timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["waves"] >= 3 and result["server_errors"] == 0, result["errors_seen"]
    assert result["hostile_not_4xx"] == 0 and result["not_served"] == 0
    assert result["rows_back_to_zero"]  # every stream left the batch, cancelled or not
    if result["rss_growth"] is not None:  # Linux: the server's resident memory after warm-up
        assert result["rss_growth"] < 0.25
