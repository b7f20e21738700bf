"""`affectreason bench`: benchmark suites (EMER, OV-MER, MER-UniBench, MME-Emotion, EmoBench-M) over the released
data on local disk.

Light modules (`suites`, `adapters`, `store`) import without torch; `runner` builds the engine lazily through
the factory it is given.
"""
