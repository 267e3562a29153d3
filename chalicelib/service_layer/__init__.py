"""The service layer's composition: the unit of work the features' services are handed."""
