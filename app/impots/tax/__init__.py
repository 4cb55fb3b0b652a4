"""The tax rule of spec §1: admin data and the computation, pure Python, no I/O."""

from impots.tax.admin_data import COURSE_ADMIN_DATA, AdminData
from impots.tax.rules import TaxResult, compute_tax

__all__ = ["COURSE_ADMIN_DATA", "AdminData", "TaxResult", "compute_tax"]
