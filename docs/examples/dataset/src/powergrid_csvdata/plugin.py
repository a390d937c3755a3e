from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_datasets():
    return [PluginRecord("csv_profile", "powergrid_csvdata.provider:CsvProfile",
                         "hourly values from a CSV file with a column per role")]
