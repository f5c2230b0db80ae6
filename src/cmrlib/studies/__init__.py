"""One package per study the book reproduces, in the book's order: :mod:`~cmrlib.studies.lee2025` (the main
paper, chapters 02–12), :mod:`~cmrlib.studies.puyol2021` (chapters 13–14), :mod:`~cmrlib.studies.lee2022`
(chapters 15–16) and :mod:`~cmrlib.studies.skorupko2024` (chapter 17). A study imports the layers below it
(data, training, evaluation, runs), never another study."""
