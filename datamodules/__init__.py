from datamodules.react import REACTDataModule as REACTDataModule
