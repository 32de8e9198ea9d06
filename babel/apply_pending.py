"""Apply every babel/pending/*.tsv (msgid TAB msgstr) to the zh_Hant_TW catalog.

    .venv/bin/python babel/apply_pending.py      (after babel/extract.sh)
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    pairs = []
    for tsv in sorted((HERE / "pending").glob("*.tsv")):
        for line in tsv.read_text(encoding="utf-8").splitlines():
            if line.strip():
                msgid, msgstr = line.split("\t", 1)
                pairs.append(f"{msgid}={msgstr}")
    return subprocess.call([sys.executable, str(HERE / "set_translations.py"), *pairs])


if __name__ == "__main__":
    sys.exit(main())
