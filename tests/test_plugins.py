"""Plugin discovery and isolation: real entry points, broken plugins, duplicates, disabling."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import salplug
from salplug.host._manager import DISABLE_ENV, TIMEOUT_ENV

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom_refiner"
SHARPEN_CHAIN = ROOT / "examples" / "chains" / "sharpen.yaml"

REFINER_SOURCE = """
import salplug

class {cls}(salplug.Refiner):
    '''A refiner fabricated by the tests.'''

    name = {name!r}

    def forward(self, image, saliency):
        return saliency

@salplug.hookimpl
def salplug_register_refiners(register):
    register({cls})
"""


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """The example distribution installed with pip into a folder of its own."""
    source = tmp_path_factory.mktemp("source") / "custom_refiner"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    done = subprocess.run([*command, "--target", str(target), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, f"pip install of the example failed:\n{done.stdout}\n{done.stderr}"
    return target


@pytest.mark.subprocess
def test_example_distribution_is_found_through_its_entry_point(installed_example):
    script = textwrap.dedent(
        """
        import json, sys
        import torch
        import salplug

        images = torch.rand((2, 3, 29, 41), generator=torch.Generator().manual_seed(0))
        out = salplug.Chain.from_spec(sys.argv[1])(images)
        info = salplug.get_host().plugins["sharpen"]
        print(json.dumps({
            "refiners": salplug.list_components("refiner"),
            "distribution": info.distribution,
            "errors": info.errors,
            "shape": list(out.shape),
            "range": [float(out.min()), float(out.max())],
        }))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(installed_example)}
    env.pop(DISABLE_ENV, None)
    done = subprocess.run(
        [sys.executable, "-c", script, str(SHARPEN_CHAIN)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "sharpen" in report["refiners"]
    assert report["distribution"] == "salplug-sharpen"
    assert report["errors"] == []
    assert report["shape"] == [2, 1, 29, 41]
    assert 0.0 <= report["range"][0] <= report["range"][1] <= 1.0

    cli = Path(sys.executable).with_name("salplug")
    shown = subprocess.run([str(cli), "plugins"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert shown.returncode == 0, shown.stderr
    row = next((line for line in shown.stdout.splitlines() if line.split()[:1] == ["sharpen"]), None)
    assert row is not None, f"`salplug plugins` does not list the sharpen plugin:\n{shown.stdout}"
    assert "salplug-sharpen" in row and "ok" in row.split()


@pytest.fixture
def fabricate(tmp_path, monkeypatch):
    """Write installed-looking distributions (dist-info + module) that discovery will find.

    Each call makes one distribution with one plugin; `monkeypatch.undo` runs before the
    final reload so the rest of the session sees only the real plugins again.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    modules: list[str] = []

    def make(distribution: str, entry_point: str, source: str) -> None:
        module = f"salplug_fab_{entry_point}"
        info = tmp_path / f"{distribution.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[salplug]\n{entry_point} = {module}\n")
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        modules.append(module)

    yield make
    monkeypatch.undo()
    for module in modules:
        sys.modules.pop(module, None)
    salplug.reload_plugins()


def test_a_plugin_that_fails_to_import_is_reported_and_builtins_still_work(fabricate):
    fabricate("salplug-broken", "broken", "raise ImportError('needs libfoo, which is not installed')")
    host = salplug.reload_plugins()
    info = host.plugins["broken"]
    assert not info.ok
    assert info.distribution == "salplug-broken"
    assert len(info.errors) == 1
    assert "import failed" in info.errors[0] and "needs libfoo" in info.errors[0]
    assert host.plugins["builtins"].ok
    prior = salplug.build("prior", "center")
    assert prior(torch.rand(1, 3, 8, 8)).shape == (1, 1, 8, 8)


def test_a_hook_that_raises_is_isolated(fabricate):
    fabricate(
        "salplug-halfway",
        "halfway",
        """
        import salplug
        from salplug.builtins.priors import CenterPrior

        class Middle(CenterPrior):
            '''Registers fine.'''
            name = "middle"

        @salplug.hookimpl
        def salplug_register_priors(register):
            register(Middle)

        @salplug.hookimpl
        def salplug_register_refiners(register):
            raise RuntimeError("weights server unreachable")
        """,
    )
    fabricate("salplug-fine", "fine", REFINER_SOURCE.format(cls="Fine", name="fine"))
    host = salplug.reload_plugins()
    info = host.plugins["halfway"]
    assert len(info.errors) == 1
    assert "salplug_register_refiners failed" in info.errors[0]
    assert "RuntimeError: weights server unreachable" in info.errors[0]
    assert info.components == {"prior": ["middle"]}
    assert host.plugins["fine"].ok
    assert "fine" in salplug.list_components("refiner")
    assert "middle" in salplug.list_components("prior")
    assert "center" in salplug.list_components("prior")


def test_two_distributions_registering_one_name_fail_loudly(fabricate):
    fabricate("salplug-alpha", "a_twin", REFINER_SOURCE.format(cls="Twin", name="twin"))
    fabricate("salplug-beta", "b_twin", REFINER_SOURCE.format(cls="Twin", name="twin"))
    host = salplug.reload_plugins()
    first, second = host.plugins["a_twin"], host.plugins["b_twin"]
    assert first.errors == second.errors == []
    assert len(first.conflicts) == len(second.conflicts) == 1
    assert "'salplug-alpha'" in second.conflicts[0] and "'salplug-beta'" in first.conflicts[0]
    with pytest.raises(salplug.DuplicateComponentError) as caught:
        salplug.build("refiner", "twin")
    assert (caught.value.first, caught.value.second) == ("salplug-alpha", "salplug-beta")
    assert "'salplug-alpha'" in str(caught.value) and "'salplug-beta'" in str(caught.value)


TWO_REFINERS = """
import salplug

class Clashing(salplug.Refiner):
    '''Takes a name another distribution has.'''
    name = "sharpen-clash"

    def forward(self, image, saliency):
        return saliency

class Own(salplug.Refiner):
    '''A name nobody else uses.'''
    name = {own!r}

    def forward(self, image, saliency):
        return saliency

@salplug.hookimpl
def salplug_register_refiners(register):
    register(Clashing)
    register(Own)
"""


def test_a_clash_neither_fails_the_genuine_plugin_nor_drops_the_hooks_other_registrations(fabricate, capsys):
    fabricate("salplug-zeta-genuine", "z_genuine", TWO_REFINERS.format(own="zeta-own"))
    fabricate("salplug-aaa-copycat", "a_copycat", TWO_REFINERS.format(own="copycat-own"))
    host = salplug.reload_plugins()
    genuine, copycat = host.plugins["z_genuine"], host.plugins["a_copycat"]
    assert genuine.errors == [] and copycat.errors == []
    assert genuine.components == {"refiner": ["zeta-own"]}
    assert copycat.components == {"refiner": ["sharpen-clash", "copycat-own"]}
    assert {"zeta-own", "copycat-own"} <= set(salplug.list_components("refiner"))
    salplug.build("refiner", "zeta-own")
    from salplug.cli import main

    assert main(["list", "refiner", "sharpen-clash"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    assert "CONFLICT: registered by both 'salplug-aaa-copycat' and 'salplug-zeta-genuine'" in row
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out
    assert next(line for line in table.splitlines() if line.startswith("z_genuine")).split()[3] == "conflict"


RUDE = {
    "exit-on-import": "import sys\nsys.exit('no GPU, giving up')",
    "interrupt-on-import": "raise KeyboardInterrupt",
    "interrupt-in-hook": "import salplug\n\n@salplug.hookimpl\ndef salplug_register_refiners(register):\n    raise KeyboardInterrupt\n",
    "exit-in-hook": "import salplug\n\n@salplug.hookimpl\ndef salplug_register_refiners(register):\n    raise SystemExit(3)\n",
}


@pytest.mark.parametrize("source", RUDE.values(), ids=RUDE.keys())
def test_a_plugin_raising_systemexit_or_keyboardinterrupt_is_isolated(fabricate, capsys, source):
    fabricate("salplug-rude", "rude", source)
    host = salplug.reload_plugins()
    assert not host.plugins["rude"].ok and host.plugins["rude"].errors
    assert host.plugins["builtins"].ok
    from salplug.cli import main

    assert main(["plugins"]) == 0
    assert "rude" in capsys.readouterr().out


@pytest.mark.subprocess
def test_the_users_own_ctrl_c_while_plugins_load_still_stops(fabricate, tmp_path):
    """Ctrl-C reaches a child process while one of its plugins is importing; the child stops."""
    import signal
    import time

    ready = tmp_path / "importing"
    fabricate("salplug-slow", "slow", f"import pathlib, time\npathlib.Path({str(ready)!r}).touch()\ntime.sleep(120)")
    script = textwrap.dedent(
        """
        import signal, sys
        import salplug

        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even in a background CI job
        try:
            salplug.reload_plugins()
        except KeyboardInterrupt:
            sys.exit(3)
        print("loading went on after Ctrl-C")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop(DISABLE_ENV, None)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), f"the child never imported the slow plugin: {child.communicate(timeout=60)}"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 3, f"expected the child to stop on KeyboardInterrupt (exit 3), got {child.returncode}:\n{out}\n{err}"


@pytest.mark.subprocess
@pytest.mark.parametrize("call", ["os._exit(0)", "os._exit(3)"])
def test_a_plugin_calling_os_exit_on_import_is_its_failure_and_the_command_goes_on(fabricate, tmp_path, call):
    fabricate("salplug-quitter", "quitter", f"import os\n{call}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop(DISABLE_ENV, None)
    cli = Path(sys.executable).with_name("salplug")
    done = subprocess.run([str(cli), "plugins"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert "failed" in rows.get("quitter", []), done.stdout
    assert "ok" in rows.get("builtins", []), done.stdout
    assert f"quitter: import failed: {call} called while importing the plugin" in done.stdout
    assert "salplug_fab_quitter.py:2" in done.stdout


def test_a_plugin_that_blocks_on_import_is_failed_after_the_time_limit(fabricate, tmp_path, monkeypatch, capsys):
    release = tmp_path / "release"
    fabricate(
        "salplug-stuck",
        "stuck",
        f"""
        import pathlib, time

        deadline = time.monotonic() + 20
        while not pathlib.Path({str(release)!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        """,
    )
    fabricate("salplug-fine", "fine", REFINER_SOURCE.format(cls="Fine", name="fine"))
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    try:
        host = salplug.reload_plugins()
        info = host.plugins["stuck"]
        assert info.errors == ["import failed: still importing after 0.3 s (SALPLUG_PLUGIN_TIMEOUT raises the limit)"]
        assert host.plugins["fine"].ok and host.plugins["builtins"].ok
        from salplug.cli import main

        assert main(["plugins"]) == 0
        assert "stuck: import failed: still importing after 0.3 s" in capsys.readouterr().out
    finally:
        release.touch()


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_plugin_time_limit_is_named_and_the_default_holds(monkeypatch, value):
    monkeypatch.setenv(TIMEOUT_ENV, value)
    try:
        with pytest.warns(UserWarning, match=f"SALPLUG_PLUGIN_TIMEOUT: expected seconds, a number of 0 or more \\(0: no limit\\), got {value!r}"):
            host = salplug.reload_plugins()
        assert host.plugins["builtins"].ok
    finally:
        monkeypatch.undo()
        salplug.reload_plugins()


@pytest.mark.parametrize("handler", ["ignored", "default"])
def test_a_plugin_keyboardinterrupt_is_isolated_whether_ctrl_c_is_ignored_or_not(fabricate, handler):
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN if handler == "ignored" else signal.default_int_handler)
    try:
        fabricate("salplug-rude", "rude", RUDE["interrupt-on-import"])
        assert "KeyboardInterrupt" in salplug.reload_plugins().plugins["rude"].errors[0]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_unknown_names_suggest_close_matches_and_list_what_is_installed():
    with pytest.raises(salplug.UnknownComponentError) as caught:
        salplug.build("postprocessor", "normalise")
    installed = salplug.list_components("postprocessor")
    assert {"median", "normalize"} <= set(installed)
    message = str(caught.value)
    assert "unknown postprocessor 'normalise'" in message
    assert "Did you mean 'normalize'?" in message
    assert f"Installed postprocessors: {', '.join(installed)}." in message
    assert caught.value.installed == installed

    with pytest.raises(salplug.UnknownComponentError, match="'median' is registered as a postprocessor"):
        salplug.build("refiner", "median")


@pytest.mark.parametrize("disable", ["gone", "salplug-gone", "other, salplug-gone"])
def test_plugins_are_disabled_by_entry_point_or_distribution_name(fabricate, monkeypatch, disable):
    fabricate("salplug-gone", "gone", REFINER_SOURCE.format(cls="Gone", name="vanishing"))
    assert "vanishing" in salplug.reload_plugins().registries["refiner"].names()

    monkeypatch.setenv(DISABLE_ENV, disable)
    host = salplug.reload_plugins()
    assert host.plugins["gone"].disabled
    assert host.plugins["gone"].components == {}
    assert "vanishing" not in salplug.list_components("refiner")
    assert host.plugins["builtins"].ok
    with pytest.raises(salplug.UnknownComponentError):
        salplug.build("refiner", "vanishing")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("register(object)", "expected a subclass of salplug.Refiner, got <class 'object'>"),
        ("register(Normalize)", "expected a subclass of salplug.Refiner"),
        ("register(Loose)", "Loose.Config must keep extra='forbid'"),
        ("register(Shouting)", "Shouting.name must be lower-case"),
    ],
)
def test_invalid_registrations_are_that_plugins_error(fabricate, body, expected):
    fabricate(
        "salplug-invalid",
        "invalid",
        f"""
        from pydantic import ConfigDict
        import salplug
        from salplug.builtins.postprocessors import Normalize

        class Loose(salplug.Refiner):
            name = "loose"

            class Config(salplug.ComponentConfig):
                model_config = ConfigDict(extra="allow")

        class Shouting(salplug.Refiner):
            name = "SHOUTING"

        @salplug.hookimpl
        def salplug_register_refiners(register):
            {body}
        """,
    )
    host = salplug.reload_plugins()
    info = host.plugins["invalid"]
    assert len(info.errors) == 1
    assert "RegistrationError" in info.errors[0] and expected in info.errors[0]
    assert info.components == {}
    assert host.plugins["builtins"].ok


def test_register_plugin_from_python():
    class Squash(salplug.Refiner):
        """Halves every value."""

        name = "squash"

        def forward(self, image, saliency):
            return saliency / 2

    class Inline:
        @salplug.hookimpl
        def salplug_register_refiners(self, register):
            register(Squash)

    try:
        info = salplug.register_plugin(Inline(), name="inline")
        assert info.ok and info.components == {"refiner": ["squash"]}
        assert info.distribution == "(registered in Python)"
        assert salplug.get_host().plugins["inline"] is info
        assert salplug.get_component("refiner", "squash") is Squash
        refined = salplug.build("refiner", "squash")(torch.rand(1, 3, 4, 4), torch.ones(1, 1, 4, 4))
        assert torch.equal(refined, torch.full((1, 1, 4, 4), 0.5))

        again = salplug.register_plugin(Inline(), name="inline")
        assert again.errors == ["a plugin named 'inline' is already loaded"]
    finally:
        salplug.reload_plugins()


@pytest.mark.subprocess
def test_the_conformance_kit_runs_on_an_out_of_tree_plugin_from_the_pytest_command_line(installed_example, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed_example)}
    env.pop(DISABLE_ENV, None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--salplug-conformance", "salplug-sharpen"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "11 passed" in done.stdout  # one test per check of the refiner
    unknown = subprocess.run([*command[:-1], "salplug-nothing"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert unknown.returncode != 0 and "no installed plugin or distribution named 'salplug-nothing'" in unknown.stdout + unknown.stderr


def test_conformance_tests_builds_a_parametrized_test_for_a_plugin():
    test = salplug.testing.conformance_tests("builtins")
    marks = [m for m in test.pytestmark if m.name == "parametrize"]
    names = {f"{p.values[0].kind}:{p.values[0].name}" for p in marks[0].args[1]}
    assert {"postprocessor:median", "metric:mae", "prior:center"} <= names
    median = salplug.get_component("postprocessor", "median")
    test(median, salplug.testing.all_checks(median)[-1])


@pytest.mark.parametrize("marked", ["@salplug.hookimpl", ""])
def test_a_misspelled_hook_is_that_plugins_error_naming_the_close_match(fabricate, marked):
    fabricate(
        "salplug-typo",
        "typo",
        f"""
        import salplug
        from salplug.builtins.postprocessors import Normalize

        {marked}
        def salplug_register_refiner(register):
            register(Normalize)

        @salplug.hookimpl
        def salplug_register_postprocessors(register):
            pass
        """,
    )
    host = salplug.reload_plugins()
    info = host.plugins["typo"]
    assert not info.ok
    assert info.errors == ["'salplug_register_refiner' is not a salplug hook; did you mean 'salplug_register_refiners'?"]
    assert host.plugins["builtins"].ok
