"""The symmetry registry: one :class:`Symmetry` object per group, registered by name.

A group owns its canonical name and aliases, its action on model-frame tensors (:meth:`apply`)
and on xarray objects (through :func:`xequi.symmetry.transform`), its random parameters, its
inverse, and its label (model cards, docs). The module-level functions here (:func:`apply`,
:func:`random_params`, :func:`inverse_params`, :func:`test_params`) and the tables
:data:`KINDS` / ``XARRAY_KINDS`` are thin lookups in the registry, so that test sets,
augmentation, equivariance errors, models and checkpoints all read one object. The groups are
registered, one line each, in :mod:`xequi.symmetry`.
"""

from __future__ import annotations

from xequi.errors import ParameterError

__all__ = ["Symmetry", "register", "get", "canonical", "groups", "apply", "random_params",
           "inverse_params", "test_params", "markdown_table", "KINDS"]

#: canonical name -> group, in registration order
_GROUPS: dict[str, "Symmetry"] = {}
#: kind names of the tensor actions (canonical names and aliases) -> canonical name
KINDS: dict[str, str] = {}
#: every name (tensor and xarray-only groups) -> canonical name
_ALL_NAMES: dict[str, str] = {}


class Symmetry:
    """One symmetry group. Subclasses set the class attributes and implement the actions.

    Attributes
    ----------
    name : str
        Canonical kind name (``"rot90"``).
    aliases : tuple of str
        Other accepted names (``("rot",)``).
    tensor : bool
        Has an action on model-frame tensors (:func:`apply`); ``False`` for xarray-only kinds.
    xr_params : (tuple, tuple) or None
        Required and optional parameters of :func:`xequi.symmetry.transform`; ``None``: no
        xarray action.
    param : str or None
        The parameter :func:`inverse_params` inverts; ``defaults`` gives its default.
    needs_velocity : bool
        Acts on the velocity (refused for scalar fields and scalar-only models).
    needs_grid : bool
        :func:`~xequi.symmetry.transform` needs the grid spacing with units.
    pointwise : bool
        Acts on values only: variables with one spatial dim are left alone, not refused.
    exact : bool
        Exact on the grid (no interpolation).
    summary : str
        The action in words (docs table).
    """

    name: str = ""
    aliases: tuple[str, ...] = ()
    tensor: bool = True
    xr_params: tuple | None = ((), ())
    param: str | None = None
    defaults: dict = {}
    needs_velocity: bool = False
    needs_grid: bool = False
    pointwise: bool = False
    exact: bool = True
    summary: str = ""
    #: adjective for messages ("uniform-motion equivariant")
    adjective: str = ""
    #: the action in symbols, for messages ("w -> w + c")
    action: str = ""

    # -- identity -------------------------------------------------------------------------------
    def label(self, config=None) -> str | None:
        """Readable name of the group for model cards and docs (``config``: a model's config)."""
        return None

    def __repr__(self) -> str:
        return f"<symmetry {self.name!r}>"

    # -- tensors ----------------------------------------------------------------------------------
    def apply(self, x, vector=(0, 1), **params):
        """The action on a model-frame tensor ``(..., C, H, W)``."""
        raise ParameterError(f"the symmetry {self.name!r} has no tensor action.",
                             fix="use xequi.symmetry.transform on xarray data")

    def random_params(self, generator, **options) -> dict:
        """A random group element (augmentation); ``options`` as :func:`random_params`."""
        return {}

    def test_params(self, generator, **options) -> dict:
        """A random element of a transformed test set (default: :meth:`random_params`)."""
        return self.random_params(generator, **options)

    def invert(self, value):
        """The inverse of the value of :attr:`param`."""
        return value

    # -- xarray (see xequi.symmetry.on_xarray) ------------------------------------------------
    def prepare(self, ctx, params: dict) -> dict:
        """Parameters of the model-frame action, resolved against the data (units, ...)."""
        return params

    def act_frame(self, x, vector, ctx, lead, params: dict):
        """The action on one variable group as a float64 model-frame tensor."""
        return self.apply(x, vector=vector, **params)

    def relabel(self, ds, out, new_vars: dict, ax, grid, params: dict):
        """``out`` with the transformed variables assigned and the coordinates relabelled."""
        return out.assign(new_vars)

    #: a group whose action on a Dataset is not "every spatial variable through the model frame"
    #: (:func:`xequi.symmetry.on_xarray.apply_frame`) defines ``transform_xr(ds, ax, grid, pair,
    #: params)``; :func:`xequi.symmetry.transform` calls it instead (the registry does not import
    #: the xarray layer, which imports the registry).
    transform_xr = None


def register(group: Symmetry) -> Symmetry:
    """Add ``group`` to the registry under its name and aliases (returns it).

    Raises
    ------
    ParameterError
        A name already taken by another group.
    """
    names = (group.name, *group.aliases)
    taken = [n for n in names if _ALL_NAMES.get(n, group.name) != group.name]
    if taken:
        raise ParameterError(f"symmetry names {taken} are already registered.",
                             fix="choose other names for the new group")
    _GROUPS[group.name] = group
    for n in names:
        _ALL_NAMES[n] = group.name
        if group.tensor:
            KINDS[n] = group.name
    return group


def _names(xarray: bool) -> dict[str, str]:
    if not xarray:
        return KINDS
    return {n: c for n, c in _ALL_NAMES.items() if _GROUPS[c].xr_params is not None}


def canonical(kind: str, xarray: bool = False) -> str:
    """The canonical name of ``kind`` (an alias or a name), e.g. ``"um" -> "uniform_motion"``.

    ``xarray=True`` accepts the kinds of :func:`~xequi.symmetry.transform` (the xarray-only
    ``"galilean"`` too); otherwise the tensor kinds of :data:`KINDS`.

    Raises
    ------
    ParameterError
        An unknown kind (the message lists the valid ones).

    Examples
    --------
    >>> canonical("mag")
    'magnitude'
    """
    names = _names(xarray)
    if not isinstance(kind, str):
        raise ParameterError(f"kind must be a string, got {kind!r}.", fix=f"use one of {sorted(names)}")
    key = kind.lower()
    if key in names:
        return names[key]
    raise ParameterError(f"unknown symmetry kind {kind!r}.", fix=f"use one of {sorted(names)}")


def _canonical(kind: str, extra: tuple[str, ...] = ()) -> str:
    """Backward-compatible :func:`canonical` (``extra``: further accepted xarray-only kinds)."""
    return canonical(kind, xarray=bool(extra))


def get(kind: str, xarray: bool = False) -> Symmetry:
    """The registered group of ``kind`` (name or alias).

    Examples
    --------
    >>> get("rot").label({"group_order": 8})
    'C8 rotations (exact for multiples of 90 degrees)'
    """
    return _GROUPS[canonical(kind, xarray=xarray)]


def groups(kinds=None) -> list[Symmetry]:
    """Every registered group in registration order, or those of ``kinds`` (unknown names are
    skipped: a custom model may claim kinds xequi does not know)."""
    if kinds is None:
        return list(_GROUPS.values())
    wanted = {_ALL_NAMES[k] for k in kinds if isinstance(k, str) and k in _ALL_NAMES}
    return [g for g in _GROUPS.values() if g.name in wanted]


def xarray_kinds() -> tuple[str, ...]:
    """Canonical names of the groups with an xarray action, in registration order."""
    return tuple(n for n, g in _GROUPS.items() if g.xr_params is not None)


def apply(x, kind: str, vector=(0, 1), **params):
    """Apply the action named ``kind`` with its parameters (dispatcher for augmentation / tests).

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., C, H, W)``, model frame.
    kind : str
        A name of :data:`KINDS`: ``"rot90"``/``"rot"``, ``"rotate"``,
        ``"uniform_motion"``/``"um"``, ``"magnitude"``/``"mag"``, ``"translate"``, ``"scale"``, ...
    vector : pair of int or None, default (0, 1)
        Channel indices of (u, v). For ``"magnitude"`` it is ignored (use ``channels=``).
    **params
        The keyword parameters of the matching function (``k``, ``angle``, ``c``, ``lam``,
        ``shift``, ...), e.g. as returned by :func:`random_params`.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ParameterError
        For an unknown kind or parameters the action does not take.

    Examples
    --------
    >>> import torch
    >>> from xequi.symmetry import rot90
    >>> x = torch.randn(2, 4, 4)
    >>> torch.equal(apply(x, "rot", k=2), rot90(x, 2))
    True
    """
    group = get(kind)
    try:
        return group.apply(x, vector=vector, **params)
    except TypeError as err:
        raise ParameterError(f"bad parameters {sorted(params)} for symmetry kind {kind!r}: {err}.",
                             fix="see help(xequi.symmetry." + group.name + ")") from None


def random_params(kind: str, generator, velocity_scale: float = 1.0, lam_min: float = 0.05,
                  scale_range: tuple[float, float] = (0.5, 1.0), max_shift=(8, 8)) -> dict:
    """Draw a random group element of ``kind`` for augmentation or a transformed test set.

    Distributions (the paper's transformed test sets, where they exist):

    * ``"rot90"``: ``k`` uniform in {0, 1, 2, 3};
    * ``"rotate"``: ``angle`` ~ U(0, 360) degrees;
    * ``"uniform_motion"``: ``c`` ~ U(-2, 2)² × ``velocity_scale``;
    * ``"magnitude"``: ``lam`` ~ U(lam_min, 2) (λ near 0 is excluded: the Mag layers divide by the
      input range);
    * ``"scale"``: ``lam`` ~ U(*scale_range), default (0.5, 1): λ ≤ 1 keeps the resampled window
      inside the input in space and time;
    * ``"translate"``: integer ``shift`` uniform in [-max_shift, max_shift] per axis;
    * the other registered groups: see their :meth:`Symmetry.random_params`.

    Parameters
    ----------
    kind : str
        A kind accepted by :func:`apply`.
    generator : numpy.random.Generator or torch.Generator
        Source of randomness (reproducible).
    velocity_scale : float, default 1
        Multiplies the UM velocity (e.g. the data's velocity std in model units).
    lam_min : float, default 0.05
    scale_range : (float, float), default (0.5, 1.0)
    max_shift : (int, int), default (8, 8)

    Returns
    -------
    dict
        Keyword parameters for :func:`apply`, plain Python numbers (JSON-serialisable).

    Raises
    ------
    ParameterError
        For an unknown kind or generator.

    Examples
    --------
    >>> import numpy as np
    >>> p = random_params("um", np.random.default_rng(0))
    >>> sorted(p), all(-2 <= c <= 2 for c in p["c"])
    (['c'], True)
    """
    return get(kind).random_params(generator, velocity_scale=velocity_scale, lam_min=lam_min,
                                   scale_range=scale_range, max_shift=max_shift)


def test_params(kind: str, generator, **options) -> dict:
    """A random element for a transformed *test set*: as :func:`random_params` (same options),
    except that the identity is excluded where the group is finite (``rot90``: ``k`` uniform in
    {1, 2, 3}, so every sample is really rotated).

    Examples
    --------
    >>> import numpy as np
    >>> test_params("rot90", np.random.default_rng(0))["k"] in (1, 2, 3)
    True
    """
    return get(kind).test_params(generator, **options)


test_params.__test__ = False  # not a pytest test


def inverse_params(kind: str, **params) -> dict:
    """Parameters of the inverse group element.

    rot90: ``k -> -k mod 4``; rotate: ``angle -> -angle``; uniform_motion: ``c -> -c``;
    magnitude and scale: ``lam -> 1/lam``; translate: ``shift -> -shift``. Other parameters
    (``mode``, ``channels``, ``periodic``, ...) are kept. For the approximate actions (rotate,
    scale, non-periodic translate) the inverse undoes the action only where no information was
    lost (interior, no interpolation error).

    Parameters
    ----------
    kind : str
    **params
        Parameters of the element.

    Returns
    -------
    dict

    Raises
    ------
    ParameterError
        If a required parameter is missing, or λ is not > 0.

    Examples
    --------
    >>> inverse_params("rot90", k=1)
    {'k': 3}
    >>> inverse_params("mag", lam=4.0)
    {'lam': 0.25}
    """
    group = get(kind)
    key = group.param
    out = dict(params)
    if key is None:
        return out
    if key not in params:
        if key not in group.defaults:
            raise ParameterError(f"inverse_params({kind!r}) needs the parameter {key!r}.",
                                 fix=f"pass {key}=... as given to apply()")
        params = dict(params, **{key: group.defaults[key]})
    out[key] = group.invert(params[key])
    return out


def markdown_table() -> str:
    """The Markdown table of the registered symmetries (``docs/models.md`` holds a copy that a
    test compares with this).

    Examples
    --------
    >>> markdown_table().splitlines()[0]
    '| kind | aliases | action | label (model cards) | exact | tensors | xarray parameters |'
    """
    lines = ["| kind | aliases | action | label (model cards) | exact | tensors | xarray parameters |",
             "|---|---|---|---|---|---|---|"]
    for g in _GROUPS.values():
        aliases = ", ".join(f"`{a}`" for a in g.aliases) or "—"
        if g.xr_params is None:
            xr_text = "—"
        else:
            req, opt = g.xr_params
            xr_text = ", ".join([f"`{p}`" for p in req] + [f"`{p}` (optional)" for p in opt]) or "none"
        lines.append(f"| `{g.name}` | {aliases} | {g.summary} | {g.label() or '—'} | "
                     f"{'exact' if g.exact else 'approximate'} | {'yes' if g.tensor else 'no'} | "
                     f"{xr_text} |")
    return "\n".join(lines)
