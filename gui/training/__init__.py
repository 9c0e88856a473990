"""The training dashboard: run control, live plots, predictions, data and settings panels."""
