"""FireWorks: the LaunchPad (embedded or MongoDB), its location, launchers, queue jobs, categories."""
