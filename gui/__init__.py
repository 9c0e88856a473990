"""The PySide6 + pyqtgraph desktop front end. Observes engine models; never owns state."""
