"""Cessation demo data: visits shaped like the ROC 113 bulletin, correction tickets."""
