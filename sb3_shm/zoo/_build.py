"""
Build step (``[options] cmdclass`` in setup.cfg) that installs ``sb3_shm_zoo.pth`` next to the package.

setuptools loads this file by path when it builds the package (it does not import ``sb3_shm``), so it must
import nothing but setuptools and the standard library.

- normal install (wheel): the ``.pth`` is written at the root of ``build_lib``, i.e. the root of the wheel,
  which pip unpacks into site-packages;
- editable install (``pip install -e .``, PEP 660): setuptools only puts its own finder in the editable
  wheel, so the ``.pth`` is written straight into the unpacked editable wheel (the ``install_lib`` that
  setuptools' ``editable_wheel`` configures), which pip also unpacks into site-packages.

Either way the file is listed in the installed RECORD, so ``pip uninstall`` removes it.

The ``.pth`` line runs at interpreter start. It locates the ``sb3_shm`` package *without importing it*
(importing it would import torch), loads ``sb3_shm/zoo/_hook.py`` by path, and installs the import hook.
It does nothing when ``SB3_SHM_NO_ZOO_HOOK`` is set or when ``sb3_shm`` is gone, and never raises.
"""

import os

from setuptools.command.build_py import build_py as _build_py

PTH_NAME = "sb3_shm_zoo.pth"

_BOOTSTRAP = r"""
def _sb3_shm_zoo_hook():
    import os, sys
    if os.environ.get('SB3_SHM_NO_ZOO_HOOK', '').strip().lower() not in ('', '0', 'false', 'no'):
        return
    if '_sb3_shm_zoo_hook' in sys.modules:
        return
    import importlib.util as util
    spec = util.find_spec('sb3_shm')
    if spec is None or not spec.submodule_search_locations:
        return
    path = os.path.join(list(spec.submodule_search_locations)[0], 'zoo', '_hook.py')
    if not os.path.isfile(path):
        return
    hook_spec = util.spec_from_file_location('_sb3_shm_zoo_hook', path)
    module = util.module_from_spec(hook_spec)
    sys.modules['_sb3_shm_zoo_hook'] = module
    hook_spec.loader.exec_module(module)
    module.install()
try:
    _sb3_shm_zoo_hook()
except Exception as error:
    import sys
    sys.stderr.write(f'sb3-shm: RL Zoo hook not installed ({error!r}); `python -m sb3_shm.zoo` still works\n')
"""

# A .pth line is executed only if it starts with "import": one line, the bootstrap is exec'd from a string
PTH_LINE = f"import sys; exec({_BOOTSTRAP!r})\n"


class build_py(_build_py):
    """``build_py`` that also writes :data:`PTH_NAME` (see the module docstring)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            target_dir = self.get_finalized_command("install").install_lib
        else:
            target_dir = self.build_lib
        os.makedirs(target_dir, exist_ok=True)
        with open(os.path.join(target_dir, PTH_NAME), "w") as file:
            file.write(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs.append(os.path.join(self.build_lib, PTH_NAME))
        return outputs
