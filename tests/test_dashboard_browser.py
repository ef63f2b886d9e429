"""End to end: optuna-dashboard on a small SQLite study, opened in a real headless Chromium.

The study page must show the trials, the learning curves (intermediate values) and the plots
that :class:`~optuna_adso.dashboard.DashboardCallback` published, and the Note tab the
recommendation.  Debian's ``chromium`` is driven through Playwright's Python package (never a
Playwright browser download); ``scripts/ensure_browser.sh`` installs it.  The screenshot goes to
``docs/img/dashboard.png`` when that file is missing or ``ADSO_UPDATE_SCREENSHOT=1``.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
import pytest

import optuna_adso as adso
from conftest import DOMAINS, make_objective, make_sampler
from optuna_adso.dashboard import DashboardCallback

CHROMIUM = os.environ.get("ADSO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "img" / "dashboard.png"
N_TRIALS = 8
PLOT_TITLES = ("Mixtures tried", "Fidelity and cost over the study", "Recommendation at the target vs cost spent",
               "Predicted best mixture by model scale", "Per-domain losses of the top trials")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: run scripts/ensure_browser.sh (apt-get install chromium)"
)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> tuple[str, optuna.Study]:
    """A study with published plots, served by optuna-dashboard on 127.0.0.1 in a thread."""
    import optuna_dashboard

    storage = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'study.db'}"
    base = make_objective()

    def objective(trial: optuna.Trial) -> float:
        value = base(trial)
        for i, d in enumerate(DOMAINS):
            trial.set_user_attr(f"val_loss/{d}", value + 0.1 * i)
        return value

    study = optuna.create_study(storage=storage, study_name="browser-test", sampler=make_sampler(0),
                                pruner=adso.ADSOPruner())
    study.optimize(objective, n_trials=N_TRIALS, callbacks=[DashboardCallback(every=N_TRIALS)])
    server: WSGIServer = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(storage), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/dashboard/studies/{study._study_id}", study
    server.shutdown()
    server.server_close()


def test_study_page_shows_trials_learning_curves_and_our_plots(dashboard, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, study = dashboard
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_text("Intermediate values").wait_for(timeout=30_000)
            for title in PLOT_TITLES:
                page.get_by_text(title).first.wait_for(timeout=30_000)
            text = page.inner_text("body")
            assert "browser-test" in text
            for n in range(N_TRIALS):  # every trial's learning curve is in the legend
                assert f"trial #{n}" in text
            assert "mix/web" in text  # the real weights are the study's params
            assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") >= len(PLOT_TITLES) + 2
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
            if not SCREENSHOT.exists() or os.environ.get("ADSO_UPDATE_SCREENSHOT") == "1":
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, SCREENSHOT)
            page.goto(url + "/note")
            page.get_by_text("ADSO recommendation").first.wait_for(timeout=30_000)
            assert f"after {N_TRIALS} trials" in page.inner_text("body")
        finally:
            browser.close()
