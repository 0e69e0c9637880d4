"""The installation around the sync: setup checks (doctor), webhook registration and recovery,
and the health of the dependencies."""
