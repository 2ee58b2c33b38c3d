"""The data: FER2013's CSV layouts and their parser, FER+'s votes, the Dataset of arrays, the shifted faces of bench.py shifts."""
