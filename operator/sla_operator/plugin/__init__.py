"""`kubectl sla`: the people's side of incidents and maintenance, as a kubectl plugin.

Pure parsing and formatting (``times``, ``table``, ``views``, ``edits``, ``windows``) are kept
apart from the API calls (``cluster``) and the command line (``parser``, ``main``).
"""
