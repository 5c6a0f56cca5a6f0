"""taskq's command line (`taskq --help`)."""
