"""Where state lives: the Kubernetes API or a local folder, behind one interface."""
