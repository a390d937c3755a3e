"""The guides' example plugins project a non-finite action and name the place of a bad data cell."""

from __future__ import annotations

from tests.docs.test_examples import run


def test_protocol_example_projects_a_nan_or_out_of_box_share(examples_path):
    # docs/guides/protocol.md: a non-finite entry a protocol reads is projected as the core does (clip_action). The
    # example sent NaN setpoints (infos setpoints_mw {'ess1': nan, 'dg1': nan}) and, for a share of 5, 2.5 MW to a
    # 0.5 MW battery, reporting no projection of its own (/work/notes/R2s30/examples/proto_nan.py). A share of 5 on
    # [0, 1] counts the range, 1 (r40 F10: its move, 4, was not capped: 1e30 counted 1e30)
    out = run(examples_path, """
        import math
        import numpy as np
        from powergrid.env import MultiAgentPowerGridEnv

        env = MultiAgentPowerGridEnv.from_config(dict(
            name="share_nan", network={"type": "cigre_mv"}, time={"physics": "1h", "episode": "2h"},
            spaces={"action": "physical"},
            agents=[{"id": "mg", "kind": "grid", "policy": "learned", "protocol": {"type": "proportional_share"},
                     "children": ["ess"]},
                    {"id": "ess", "type": "ESS", "bus": "Bus 5", "params": {"p_max_mw": 0.5, "capacity_mwh": 2.0}}]))
        for share, sent, projection in ((np.nan, 0.0, 1.0), (5.0, 0.5, 1.0), (0.75, 0.25, 0.0)):
            env.reset(seed=0)
            info = env.step({"mg": np.array([share], np.float32)})[4]["mg"]["ProportionalShare"]
            assert math.isclose(info["setpoints_mw"]["ess"], sent, abs_tol=1e-9), (share, info)
            assert math.isclose(info["projection"], projection, abs_tol=1e-9), (share, info)
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_dataset_example_names_the_file_line_and_role_of_a_bad_cell(examples_path, tmp_path):
    # a blank price cell ended 'powergrid run' with 'ValueError: could not convert string to float: ''', naming no
    # file, line or column (/work/notes/R2s30/examples/ds)
    (tmp_path / "day.csv").write_text("hour,price\n0,35.0\n1,\n")
    (tmp_path / "nan.csv").write_text("hour,price\n0,35.0\n1,35.2\n2,nan\n")  # read as NaN: a 20,000 $ "blackout"
    out = run(examples_path, f"""
        import numpy as np
        from powergrid.params import build_params
        from powergrid_csvdata.provider import CsvProfile

        for name in ("day.csv", "nan.csv"):
            provider = CsvProfile(build_params(CsvProfile.Params, {{"path": {str(tmp_path)!r} + "/" + name}}), "price")
            try:
                provider.episode(4, 60.0, np.random.default_rng(0))
            except ValueError as exc:
                print(exc)
    """)
    assert out.splitlines() == [f"{tmp_path / 'day.csv'}:3 price: expected a finite number, got ''",
                                f"{tmp_path / 'nan.csv'}:4 price: expected a finite number, got 'nan'"]
