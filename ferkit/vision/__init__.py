"""Faces in pictures: reading images, the detectors (BlazeFace), the crops, the Analyser, the face record, tracks and smoothing in time, box overlap, drawing, and the numbers the page shares."""
