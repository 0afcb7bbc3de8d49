"""Plate wells and layouts: one implementation of well names for reading, counting and display."""

from svetlana_core.plate.layout import PLATE_LAYOUTS, add_wells, check_on_layout, infer_layout, layout_shape, plate_wells, well_positions
from svetlana_core.plate.wells import Well, canonical_wells, parse_well, parse_well_name, well_name

__all__ = [
    'PLATE_LAYOUTS',
    'Well',
    'add_wells',
    'canonical_wells',
    'check_on_layout',
    'infer_layout',
    'layout_shape',
    'parse_well',
    'parse_well_name',
    'plate_wells',
    'well_name',
    'well_positions',
]
