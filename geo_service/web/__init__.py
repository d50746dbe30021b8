"""The command-centre big screen: its page (static/), asset allow-lists (assets.py) and the
set-up tool that builds the map glyphs (tools/)."""
