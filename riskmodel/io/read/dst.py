"""Names of the daylight-saving policies for naive local times (described in
:mod:`riskmodel.io.read.events`). Kept free of pandas so the CLI can offer them as choices
without importing the readers."""

DST_POLICIES = ("raise", "shift", "earliest", "latest", "drop")
