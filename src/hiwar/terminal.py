"""Showing Arabic in a terminal. Terminals differ: some lay out right-to-left text themselves (they only
need the line marked as an RTL run), others print characters in memory order, so Arabic comes out reversed
and unjoined unless it is reordered and shaped first."""

from __future__ import annotations

RLI, PDI = "\u2067", "\u2069"  # right-to-left isolate ... pop directional isolate
MODES = ("isolate", "visual", "plain")


def rtl_line(text: str, mode: str) -> str:
    """`isolate`: mark the line as RTL for bidi-aware terminals; `visual`: reorder and join letters for
    terminals without bidi support; `plain`: unchanged (for pipes and files)."""
    if mode == "isolate":
        return f"{RLI}{text}{PDI}"
    if mode == "visual":
        import arabic_reshaper
        from bidi import get_display

        return get_display(arabic_reshaper.reshape(text))
    return text
