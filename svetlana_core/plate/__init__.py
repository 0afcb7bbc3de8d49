"""Plate wells and layouts: one implementation of well names for reading, counting and display."""

from svetlana_core.plate.wells import Well, parse_well, parse_well_name, well_name
from svetlana_core.plate.layout import PLATE_LAYOUTS, add_wells, infer_layout, plate_wells

__all__ = [
    'PLATE_LAYOUTS',
    'Well',
    'add_wells',
    'infer_layout',
    'parse_well',
    'parse_well_name',
    'plate_wells',
    'well_name',
]
