"""Model export and import dialogs (File > Export Model, File > Import Model)."""
