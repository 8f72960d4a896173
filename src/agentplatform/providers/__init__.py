"""Model providers behind one small ``ChatModel`` protocol; vendor SDK types never leave here."""
