"""The scoped data layer: scope, the scoped datamodel, audit, counts, filters, field rules."""
