"""`python bench/selectors.py ...`: runs bench/selector_bench.py (selectors compared).

Running a script puts its folder first on sys.path, so inside bench/ a file named
selectors.py is what the standard library gets when socket, asyncio or multiprocessing do
`import selectors`. Imported under that name, this file therefore installs the real module.
"""

import os
import sys

if __name__ == "__main__":
    from selector_bench import main

    main()
else:  # imported as the standard library's `selectors`: become the real one
    import importlib.util

    _path = os.path.join(os.path.dirname(os.__file__), "selectors.py")
    _spec = importlib.util.spec_from_file_location("selectors", _path)
    _real = importlib.util.module_from_spec(_spec)
    sys.modules["selectors"] = _real
    _spec.loader.exec_module(_real)
    globals().update(_real.__dict__)
