"""Fill the zh_Hant_TW catalog's empty translations from other versions of it.

    git show :3:babel/translations/zh_Hant_TW/LC_MESSAGES/messages.po > /tmp/theirs.po
    bash babel/extract.sh && .venv/bin/python babel/merge_catalogs.py /tmp/theirs.po

For merging two branches that both added strings: take one side's catalog, re-extract
(so every msgid of the merged code is present), then fill what is still untranslated
from the other side. Existing translations are never overwritten.
"""

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent / "translations" / "zh_Hant_TW" / "LC_MESSAGES" / "messages.po"


def main(sources: list[str]) -> int:
    with PO.open("rb") as handle:
        catalog = read_po(handle)
    known = {}
    for source in sources:
        with open(source, "rb") as handle:
            for message in read_po(handle):
                if message.id and message.string and "fuzzy" not in message.flags:
                    known.setdefault(message.id, message.string)
    filled = 0
    for message in catalog:
        empty = not message.string or (
            isinstance(message.string, tuple) and not any(message.string)
        )
        if message.id and empty and message.id in known:
            message.string = known[message.id]
            message.flags.discard("fuzzy")
            filled += 1
    with PO.open("wb") as handle:
        write_po(handle, catalog, width=100)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    print(f"filled {filled}; still untranslated: {len(untranslated)}")
    for msgid in untranslated:
        print(f"  {msgid!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
