"""A small project folder for the rating tests (and docs/img/rating_screenshot.py): params.yaml, the
evaluate stage's replies file as the evaluate stage writes it, and helpers to run `hiwar rate ...` and the
`rating` stage in it, and to drive the system's chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from conftest import stage_command

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("aragpt2-mega", "arabianGPT-08B-V2")
KINDS = ("base", "finetuned")
# Strings that would unblind a rater: model names and the kind of model.
MODEL_WORDS = ("aragpt2", "arabiangpt", "finetuned", "_base", "base_")
HOSTILE = '<script>document.title="pwned"</script><b>عريض؟</b>'
FORMULA = '=HYPERLINK("http://example.invalid","اضغط هنا")'
MIXED = "أنصحك بهاتف Samsung Galaxy S24 Ultra لأن بطاريته تدوم يومين، وسعره نحو 4,500 ريال."

QUESTIONS = [
    ("السفر", "أريد زيارة مدينة البتراء في الربيع، ما أفضل وقت للذهاب؟",
     "الربيع من أجمل الأوقات هناك؛ اذهب في الصباح الباكر قبل اشتداد الحر."),
    ("التقنية", "ما الهاتف الذي تنصحني به إذا كانت البطارية أهم شيء عندي؟",
     "ابحث عن هاتف ببطارية كبيرة وشاشة موفّرة للطاقة."),
    ("الطبخ", "كيف أحضّر المقلوبة دون أن تلتصق بالقدر؟",
     "ادهن قاع القدر بالزيت جيدًا ورتّب شرائح البطاطا أولًا."),
    ("الصحة", "أشعر بالتعب بعد الظهر كل يوم، هل هذا طبيعي؟",
     "قد يكون السبب قلة النوم أو وجبة غداء ثقيلة، وإن استمر فراجع طبيبًا."),
]
REPLIES = {
    ("aragpt2-mega", "base"): ["البتراء مدينة قديمة في الأردن.", MIXED, "المقلوبة أكلة شعبية.", "التعب شائع."],
    ("aragpt2-mega", "finetuned"): [
        "أفضل وقت هو شهر نيسان، حين يعتدل الطقس وتزهر التلال حول الموقع.", HOSTILE,
        "ادهن القدر بالسمن ورتّب الباذنجان المقلي في القاع، ثم اقلبها بعد أن تهدأ عشر دقائق.",
        "هذا شائع بعد الغداء، لكن إن رافقه دوار أو ضيق نفس فاستشر طبيبًا."],
    ("arabianGPT-08B-V2", "base"): ["الربيع.", "لا أعرف.", FORMULA, "نم جيدًا."],
    ("arabianGPT-08B-V2", "finetuned"): [
        "اذهب في آذار أو نيسان، وابدأ الجولة من السيق صباحًا لتتجنب الزحام.",
        "اختر هاتفًا ببطارية 5000 ملي أمبير على الأقل، مثل Xiaomi Redmi Note 13.",
        "اترك الأرز ينقع نصف ساعة، وضع ورق الزبدة في قاع القدر قبل ترتيب الخضار.",
        "جرّب مشيًا قصيرًا بعد الغداء وقلّل السكريات، فغالبًا ما يكون السبب هبوط السكر."],
}


def replies_frame() -> pd.DataFrame:
    rows = []
    for turn, (topic, question, reference) in enumerate(QUESTIONS):
        history = [{"role": "user", "content": "السلام عليكم"},
                   {"role": "assistant", "content": "وعليكم السلام، كيف أساعدك اليوم؟"},
                   {"role": "user", "content": question}]
        for (model, kind), texts in REPLIES.items():
            rows.append({"turn": turn, "conversation_id": f"c{turn:03d}", "topic": topic, "turn_in_conversation": 2,
                         "history": history, "reference": reference, "model": model, "kind": kind,
                         "reply": texts[turn]})
    return pd.DataFrame(rows)


def make_project(path: Path, **rating) -> Path:
    """A project folder with params.yaml (rating section overridden by `rating`) and the replies file."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["rating"].update({"bootstrap": 50, **rating})
    (path / "data/eval").mkdir(parents=True, exist_ok=True)
    (path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    replies_frame().to_parquet(path / "data/eval/replies.parquet", index=False)
    return path


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def hiwar(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hiwar.cli", *args], cwd=project, env=env(), capture_output=True,
                          text=True, timeout=120)


def run_stage(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(stage_command("rating"), cwd=project, env=env(),
                          capture_output=True, text=True, timeout=300)


def serve(project: Path, *raters: str) -> tuple[subprocess.Popen, dict[str, str]]:
    """`hiwar rate serve` on a free port; (process, {rater: address}) once it listens."""
    args = [a for r in raters for a in ("--rater", r)]
    process = subprocess.Popen([sys.executable, "-m", "hiwar.cli", "rate", "serve", *args, "--port", "0"],
                               cwd=project, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    addresses = {}
    for line in process.stdout:
        match = re.match(r"(\S+): (http://127\.0\.0\.1:\d+/r/\S+/)$", line.strip())
        if match:
            addresses[match[1]] = match[2]
        if line.startswith("Ctrl-C"):
            return process, addresses
    raise RuntimeError(f"server did not start: {process.wait()}")


def chromium(user_data_dir: Path, width: int = 1100, height: int = 1000):
    """Debian's chromium through its chromedriver: never a downloaded browser."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--lang=ar", f"--window-size={width},{height}", f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request and response
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
