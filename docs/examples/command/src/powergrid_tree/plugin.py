from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_commands():
    return [PluginRecord("tree", "powergrid_tree.cli:main", "tree SCENARIO: print a scenario's agent tree")]
