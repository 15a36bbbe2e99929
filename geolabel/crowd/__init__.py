"""Crowd quality control: task assignment with gold, aggregation, agreement, reliability, drift."""

from geolabel.crowd.agreement import (
    AgreementReport,
    agreement_report,
    cohen_kappa_pairs,
    fleiss_kappa,
    krippendorff_alpha,
)
from geolabel.crowd.assignment import (
    TaskAssignment,
    assign_tasks,
    load_assignment,
    save_assignment,
)
from geolabel.crowd.dawid_skene import DawidSkene
from geolabel.crowd.drift import DriftReport, detect_drift
from geolabel.crowd.glad import GLAD
from geolabel.crowd.majority_vote import MajorityVote
from geolabel.crowd.one_coin import OneCoinDawidSkene
from geolabel.crowd.reliability import AnnotatorReport, ReliabilityReport, reliability_report
from geolabel.crowd.wmv import WeightedMajorityVote

__all__ = [
    "GLAD",
    "AgreementReport",
    "AnnotatorReport",
    "DawidSkene",
    "DriftReport",
    "MajorityVote",
    "OneCoinDawidSkene",
    "ReliabilityReport",
    "TaskAssignment",
    "WeightedMajorityVote",
    "agreement_report",
    "assign_tasks",
    "cohen_kappa_pairs",
    "detect_drift",
    "fleiss_kappa",
    "krippendorff_alpha",
    "load_assignment",
    "reliability_report",
    "save_assignment",
]
