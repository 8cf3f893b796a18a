import subprocess
import sys

import xarray as xr

import xequi


def test_version_and_accessors():
    assert isinstance(xequi.__version__, str) and xequi.__version__.count(".") >= 2
    assert hasattr(xr.Dataset(), "equi")
    assert hasattr(xr.DataArray([1.0]), "equi")


def test_errors_name_problem_and_fix():
    err = xequi.ParameterError("Ra must be > 0, got -1.", fix="pass Ra=1e4")
    assert str(err) == "Ra must be > 0, got -1.\nFix: pass Ra=1e4"
    assert isinstance(err, ValueError) and isinstance(err, xequi.XequiError)
    missing = xequi.VariableNotFoundError("no 'u'", fix="pass u=")
    assert str(missing) == "no 'u'\nFix: pass u="  # not quoted like a plain KeyError


def test_import_is_light():
    """Importing xequi registers the accessor without importing torch or e2cnn."""
    code = "import sys, xequi; print('torch' in sys.modules, 'e2cnn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_lazy_public_functions():
    from xequi import checkpoint, train

    assert xequi.load_model is checkpoint.load_model
    assert xequi.save_model is checkpoint.save_model
    assert xequi.fit is train.fit
    assert "resnet" in xequi.models.available()
    try:
        xequi.no_such_thing
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:  # pragma: no cover
        raise AssertionError("missing attribute did not raise")
