"""Example dataset plugin: ``csv_profile``, hourly values of any profile role from a CSV file."""
