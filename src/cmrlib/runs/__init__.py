"""The run store: an experiment trained once into its folder (named by a hash of everything that shapes it),
resumed from its checkpoint, evaluated, and read back; results over training seeds as evidence; experiments as
cluster jobs; clinical measures of stored models."""
