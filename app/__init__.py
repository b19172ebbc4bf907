"""CAE Latent Explorer's Qt GUI.  Widgets reach the engine (`cae`) only through the services here."""
