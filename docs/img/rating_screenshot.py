"""Take docs/img/rating-page.png: the rating page in Debian's chromium (headless), showing a reply that mixes
Arabic with a Latin brand name. Needs chromium, chromium-driver and an Arabic font (fonts-noto-core).

    python docs/img/rating_screenshot.py
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from rating_project import MIXED, chromium, hiwar, make_project, serve  # noqa: E402


def main():
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "project", sample=4, repeat_share=0.0)
        result = hiwar(project, "rate", "export")
        if result.returncode:
            sys.exit(result.stderr)
        server, addresses = serve(project, "huda")
        driver = chromium(Path(tmp) / "browser", width=900, height=1150)
        try:
            for n in range(1, 17):
                driver.get(addresses["huda"] + str(n))
                if driver.find_element("css selector", ".replies .text").text == MIXED:
                    break
            for key in "45":  # two answers given, so the page shows the highlighted next criterion
                driver.find_element("tag name", "body").send_keys(key)
            driver.implicitly_wait(1)
            out = ROOT / "docs/img/rating-page.png"
            driver.save_screenshot(str(out))
            print(f"{out}: page {n} of {addresses['huda']}")
        finally:
            driver.quit()
            server.kill()


if __name__ == "__main__":
    main()
