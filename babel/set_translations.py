"""Set or correct msgstrs of the zh_Hant_TW catalog from the command line.

    .venv/bin/python babel/set_translations.py 'Read=讀取' 'Export=匯出'
"""

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent / "translations" / "zh_Hant_TW" / "LC_MESSAGES" / "messages.po"


def main(pairs: list[str]) -> int:
    with PO.open("rb") as handle:
        catalog = read_po(handle)
    fixes = dict(pair.split("=", 1) for pair in pairs)
    missing = [msgid for msgid in fixes if msgid not in catalog]
    for message in catalog:
        if message.id in fixes:
            message.string = fixes[message.id]
            message.flags.discard("fuzzy")
    with PO.open("wb") as handle:
        write_po(handle, catalog, width=100)
    for msgid in missing:
        print(f"not in catalog (run babel/extract.sh first): {msgid}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
