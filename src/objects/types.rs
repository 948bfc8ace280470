//! Small public value types shared by many operations: storage classes,
//! versioning states, lock modes, and the physical tier each class maps to.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use super::error::Error;

/// An S3 storage class (the enum every AWS SDK accepts).
///
/// Classes map to physical tiers of this store: the hot ones keep chunks
/// uncompressed in hot pack files; infrequent-access and Glacier Instant
/// Retrieval keep them compressed in separate cold packs; GLACIER and
/// DEEP_ARCHIVE are cold too and must be restored before a GET, as in S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum StorageClass {
    /// S3 Standard (the default).
    #[default]
    Standard,
    /// Reduced redundancy (a hot label here).
    ReducedRedundancy,
    /// Standard - Infrequent Access (cold tier, readable directly).
    StandardIa,
    /// One Zone - Infrequent Access (cold tier, readable directly).
    OnezoneIa,
    /// Intelligent-Tiering (a hot label here).
    IntelligentTiering,
    /// Glacier Flexible Retrieval (cold tier, restore before GET).
    Glacier,
    /// Glacier Deep Archive (cold tier, restore before GET).
    DeepArchive,
    /// Outposts (not supported by this store).
    Outposts,
    /// Glacier Instant Retrieval (cold tier, readable directly).
    GlacierIr,
    /// Snow (not supported by this store).
    Snow,
    /// Express One Zone (a hot label here).
    ExpressOnezone,
    /// FSx for OpenZFS (not supported by this store).
    FsxOpenzfs,
    /// FSx for ONTAP (not supported by this store).
    FsxOntap,
}

/// Where a class's chunks physically live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// Uncompressed hot packs.
    Hot = 0,
    /// Compressed cold packs.
    Cold = 1,
}

impl Tier {
    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Hot),
            1 => Some(Self::Cold),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) const ALL: [Tier; 2] = [Tier::Hot, Tier::Cold];
}

const CLASS_NAMES: [(StorageClass, &str); 13] = [
    (StorageClass::Standard, "STANDARD"),
    (StorageClass::ReducedRedundancy, "REDUCED_REDUNDANCY"),
    (StorageClass::StandardIa, "STANDARD_IA"),
    (StorageClass::OnezoneIa, "ONEZONE_IA"),
    (StorageClass::IntelligentTiering, "INTELLIGENT_TIERING"),
    (StorageClass::Glacier, "GLACIER"),
    (StorageClass::DeepArchive, "DEEP_ARCHIVE"),
    (StorageClass::Outposts, "OUTPOSTS"),
    (StorageClass::GlacierIr, "GLACIER_IR"),
    (StorageClass::Snow, "SNOW"),
    (StorageClass::ExpressOnezone, "EXPRESS_ONEZONE"),
    (StorageClass::FsxOpenzfs, "FSX_OPENZFS"),
    (StorageClass::FsxOntap, "FSX_ONTAP"),
];

impl StorageClass {
    /// The class's S3 name (`"STANDARD_IA"`).
    pub fn as_str(self) -> &'static str {
        CLASS_NAMES
            .iter()
            .find(|(class, _)| *class == self)
            .map_or("STANDARD", |(_, name)| name)
    }

    /// Whether objects of this class must be restored before a GET.
    pub fn is_archive(self) -> bool {
        matches!(self, Self::Glacier | Self::DeepArchive)
    }

    /// The physical tier, or `InvalidStorageClass` for the classes of other
    /// AWS services (Outposts, Snow, FSx) that this store cannot hold.
    pub(crate) fn tier(self) -> Result<Tier, Error> {
        match self {
            Self::Standard
            | Self::ReducedRedundancy
            | Self::IntelligentTiering
            | Self::ExpressOnezone => Ok(Tier::Hot),
            Self::StandardIa
            | Self::OnezoneIa
            | Self::GlacierIr
            | Self::Glacier
            | Self::DeepArchive => Ok(Tier::Cold),
            Self::Outposts | Self::Snow | Self::FsxOpenzfs | Self::FsxOntap => Err(
                Error::InvalidStorageClass(format!("{} is not supported by this store", self)),
            ),
        }
    }

    /// The minimum days a transition rule may name for this class (S3:
    /// 30 for the infrequent-access classes, 0 otherwise).
    pub(crate) fn transition_days_min(self) -> u32 {
        match self {
            Self::StandardIa | Self::OnezoneIa => {
                super::limits::INFREQUENT_ACCESS_TRANSITION_DAYS_MIN
            }
            _ => 0,
        }
    }

    /// How "cold" the class is, to choose among transitions due on the same
    /// day (S3 prefers the colder class: Glacier over IA).
    pub(crate) fn coldness(self) -> u8 {
        match self {
            Self::Standard | Self::ReducedRedundancy | Self::ExpressOnezone => 0,
            Self::IntelligentTiering => 1,
            Self::StandardIa => 2,
            Self::OnezoneIa => 3,
            Self::GlacierIr => 4,
            Self::Glacier => 5,
            Self::DeepArchive => 6,
            Self::Outposts | Self::Snow | Self::FsxOpenzfs | Self::FsxOntap => 0,
        }
    }

    pub(crate) fn to_byte(self) -> u8 {
        CLASS_NAMES
            .iter()
            .position(|(class, _)| *class == self)
            .map_or(0, |index| index as u8)
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        CLASS_NAMES.get(usize::from(byte)).map(|(class, _)| *class)
    }
}

impl fmt::Display for StorageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StorageClass {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        CLASS_NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(class, _)| *class)
            .ok_or_else(|| Error::InvalidStorageClass(format!("unknown storage class {name:?}")))
    }
}

/// A bucket's versioning state as S3 reports it: a bucket that was never
/// configured has no status (`None` in [`GetBucketVersioningOutput`]).
///
/// [`GetBucketVersioningOutput`]: super::GetBucketVersioningOutput
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketVersioningStatus {
    /// Every PUT creates a new version with a unique id.
    Enabled,
    /// New writes get the `null` version id and replace the null version.
    Suspended,
}

/// The internal versioning state, including "never configured".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Versioning {
    Unversioned = 0,
    Enabled = 1,
    Suspended = 2,
}

impl Versioning {
    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Unversioned),
            1 => Some(Self::Enabled),
            2 => Some(Self::Suspended),
            _ => None,
        }
    }

    pub(crate) fn status(self) -> Option<BucketVersioningStatus> {
        match self {
            Self::Unversioned => None,
            Self::Enabled => Some(BucketVersioningStatus::Enabled),
            Self::Suspended => Some(BucketVersioningStatus::Suspended),
        }
    }
}

/// An object lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectLockMode {
    /// Deletable, shortenable or removable only with
    /// `bypass_governance_retention(true)`.
    Governance,
    /// Nobody may delete the version or shorten the period until it ends.
    Compliance,
}

impl ObjectLockMode {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::Governance => 1,
            Self::Compliance => 2,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Governance),
            2 => Some(Self::Compliance),
            _ => None,
        }
    }
}

/// A version's retention: its mode and the time until which it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLockRetention {
    /// Governance or compliance.
    pub mode: ObjectLockMode,
    /// Until when the version is protected.
    pub retain_until_date: SystemTime,
}

/// A bucket's default retention, applied to every new version that names
/// none (S3 `DefaultRetention`: days or years, not both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRetention {
    /// The mode new versions get.
    pub mode: ObjectLockMode,
    /// The period.
    pub period: RetentionPeriod,
}

/// A default retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionPeriod {
    /// A number of days (365 per year, as S3 computes them).
    Days(u32),
    /// A number of years.
    Years(u32),
}

impl RetentionPeriod {
    pub(crate) fn days(self) -> u64 {
        match self {
            Self::Days(days) => u64::from(days),
            Self::Years(years) => u64::from(years) * 365,
        }
    }
}

/// How `copy_object` treats the source's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetadataDirective {
    /// Copy the source's metadata and content type (the default).
    #[default]
    Copy,
    /// Use the metadata and content type given in the request.
    Replace,
}
