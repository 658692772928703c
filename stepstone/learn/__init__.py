"""Learning from what exploration found (torch, the optional extra): inverse-dynamics labels."""
