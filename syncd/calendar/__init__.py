"""The calendars' side: connectors, reading, expansion into occurrences, mapping, and the edits
syncd makes to calendar objects (write-back, moves)."""
